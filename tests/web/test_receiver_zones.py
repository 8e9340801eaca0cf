"""A receiver that does not hear the zones it is registered in is shown, with what to run."""

from __future__ import annotations

import html
import re
import time

from flask.testing import FlaskClient
from web_support import login

from broadcast.service import BroadcastService
from broadcast.store.models import Device
from wire.protocol import DeviceStatus, ReceiverState


def _heartbeat(service: BroadcastService, device_id: str, zones: list[str], at: float) -> None:
    extra = {"cache_complete": 1.0, "zones": zones, "refused_topics": []}
    service._on_status(DeviceStatus(device_id, ReceiverState.IDLE, "boot", at, extra=extra))


def _row(page: str, device_id: str) -> str:
    row = re.search(rf'data-device="{device_id}">(.*?)</tr>', page, re.S)
    assert row is not None, page
    return html.unescape(row.group(1))


def test_the_dashboard_says_which_receiver_is_deaf_and_what_to_run(
    client: FlaskClient, service: BroadcastService
) -> None:
    now = time.time()
    _heartbeat(service, "loa-a-01", ["thon-a", "xa-test"], now)
    _heartbeat(service, "loa-b-01", ["thon-b", "xa-test"], now)
    with service.db.session() as session:  # moved to Thôn B; its config still says Thôn A
        session.get(Device, "loa-a-01").zone_id = "thon-b"
    _heartbeat(service, "loa-a-01", ["thon-a", "xa-test"], now + 1)
    login(client, "officer")
    row = _row(client.get("/").get_data(as_text=True), "loa-a-01")
    assert "Nghe sai khu vực: máy thu nghe thon-a, xa-test nhưng được đăng ký ở thon-b" in row
    assert "loa device refresh loa-a-01" in row and "loa mqtt-config" in row
    assert "khu vực" not in _row(client.get("/").get_data(as_text=True), "loa-b-01")
    english = _row(client.get("/?lang=en").get_data(as_text=True), "loa-a-01")
    assert "listens to thon-a, xa-test but is registered in thon-b" in english
    assert "Run `loa device refresh loa-a-01`" in english
