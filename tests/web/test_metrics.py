"""Prometheus metrics: numbers from the database, for the machine itself or an admin's token."""

from __future__ import annotations

import time

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from broadcast.service import BroadcastService
from wire import protocol


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_metrics_count_devices_broadcasts_deliveries_and_latency(
    client: FlaskClient, service: BroadcastService, tokens: dict[str, str]
) -> None:
    service._on_status(
        protocol.DeviceStatus("loa-a-01", protocol.ReceiverState.IDLE, "boot-1", time.time())
    )
    created = client.post(
        "/api/v1/announcements",
        json={"text": "Thông báo mất điện.", "zones": ["thon-a"]},
        headers={"Authorization": f"Bearer {tokens['officer']}"},
    ).get_json()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = client.get(
            f"/api/v1/announcements/{created['id']}",
            headers={"Authorization": f"Bearer {tokens['officer']}"},
        ).get_json()
        if body["status"] != "pending":
            break
        time.sleep(0.1)
    service._on_event(
        protocol.DeviceEvent(
            "loa-a-01", "c", created["id"], protocol.EventKind.RECEIVED, time.time() + 0.3
        )
    )
    response = client.get("/metrics")  # the test client comes from 127.0.0.1
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    families = _families(response.get_data(as_text=True))
    assert families["loa_devices_online"] == [({}, 1.0)]
    assert ({"state": "idle"}, 1.0) in families["loa_devices"]
    assert ({"status": "dispatched", "priority": "emergency"}, 1.0) in families["loa_broadcasts"]
    assert ({"state": "received"}, 1.0) in families["loa_deliveries"]
    latency = dict(
        (labels.get("le", name), value)
        for labels, value in families["loa_dispatch_latency_seconds"]
        for name in [str(labels)]
    )
    assert latency["+Inf"] == 1.0 and latency["0.1"] == 0.0 and latency["60.0"] == 1.0


def test_metrics_from_elsewhere_need_an_admin_token(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    remote = {"REMOTE_ADDR": "192.0.2.10"}
    assert client.get("/metrics", environ_base=remote).status_code == 403
    for role in ("officer", "viewer", "leader", "head-a"):
        response = client.get(
            "/metrics",
            environ_base=remote,
            headers={"Authorization": f"Bearer {tokens[role]}"},
        )
        assert response.status_code == 403, role
    response = client.get(
        "/metrics", environ_base=remote, headers={"Authorization": f"Bearer {tokens['admin']}"}
    )
    assert response.status_code == 200
