"""The whole chain with real processes: API → speech → MQTT → receivers play.

Run on the embedded amqtt broker (`loa demo`) and on mosquitto (`loa serve` + `loa fleet`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from processes import (
    LoaProcess,
    http_bytes,
    http_json,
    played_lines,
    start_server_and_fleet,
    wait_for_status,
)
from support import LOOPBACK, free_port, free_ports

from broadcast.fleet import registry
from broadcast.fleet.brokers.mosquitto import MosquittoBroker
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from loa import seed

URGENT = (
    "Thông báo khẩn: bão số 3 đổ bộ lúc 17h00 ngày 21/9/2026. Bà con thôn 1 chằng chống nhà cửa."
)


def _check_urgent_announcement(base: str, token: str, receivers_dir: Path) -> None:
    status, zones = http_json("GET", f"{base}/api/v1/zones", token)
    assert status == 200
    by_id = {zone["id"]: zone for zone in zones}
    village_devices = set(by_id["thon-1"]["devices"])
    other_devices = set(by_id["thon-2"]["devices"])
    assert village_devices and other_devices

    status, created = http_json(
        "POST",
        f"{base}/api/v1/announcements",
        token,
        {"text": URGENT, "zones": ["thon-1"], "priority": "emergency", "repeat": 1},
    )
    assert status == 201, created
    body = wait_for_status(base, token, created["id"], {"finished", "partial", "failed"})
    assert body["status"] == "finished", body
    assert {d["device"] for d in body["deliveries"]} == village_devices
    for delivery in body["deliveries"]:
        assert delivery["state"] == "finished"
        assert delivery["started_at"] and delivery["finished_at"]

    media = http_bytes(f"{base}/media/{body['media_sha256']}.mp3")
    assert hashlib.sha256(media).hexdigest() == body["media_sha256"]
    for device_id in village_devices:
        plays = [
            p for p in played_lines(receivers_dir, device_id) if p["broadcast_id"] == body["id"]
        ]
        assert len(plays) == 1, (device_id, plays)
        assert plays[0]["sha256"] == body["media_sha256"]
        played_file = receivers_dir / device_id / "played" / Path(plays[0]["file"]).name
        assert hashlib.sha256(played_file.read_bytes()).hexdigest() == body["media_sha256"]
    for device_id in other_devices:
        assert all(p["broadcast_id"] != body["id"] for p in played_lines(receivers_dir, device_id))


def test_demo_on_embedded_broker(tmp_path: Path, loa_processes: list[LoaProcess]) -> None:
    port, mqtt_port = free_ports(2)
    data = tmp_path / "var"
    demo = LoaProcess(
        "demo",
        "--data",
        str(data),
        "--port",
        str(port),
        "--mqtt-port",
        str(mqtt_port),
        "--receivers",
        "3",
    )
    loa_processes.append(demo)
    token = demo.wait_for_line("API token:").split(":", 1)[1].strip()
    assert f"http://127.0.0.1:{port}/" in demo.output
    assert "Login:      admin / " in demo.output
    base = f"http://127.0.0.1:{port}"

    _check_urgent_announcement(base, token, data / "receivers")
    status, devices = http_json("GET", f"{base}/api/v1/devices", token)
    assert status == 200 and all(d["online"] for d in devices), devices
    assert demo.stop() == 0
    assert "Traceback" not in demo.output, demo.output


def test_server_fleet_and_mosquitto(tmp_path: Path, loa_processes: list[LoaProcess]) -> None:
    port, mqtt_port = free_ports(2)
    data = tmp_path / "var"
    server_mqtt_port = free_port()  # mosquitto: the server has a listener of its own
    settings = Settings(
        data_dir=data, port=port, mqtt_port=server_mqtt_port, device_mqtt_port=mqtt_port
    )
    service = BroadcastService(settings, connect_mqtt=False)
    demo = seed.seed_demo(service, receivers=4, realtime=False)
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
    service.stop()

    broker = MosquittoBroker(
        tmp_path / "mosquitto", LOOPBACK, mqtt_port, access, server_port=server_mqtt_port
    )
    broker.start()
    try:
        server, fleet = start_server_and_fleet(
            loa_processes, data, port, settings.mqtt_port, settings.devices_dir, 4
        )
        base = f"http://127.0.0.1:{port}"
        _wait_all_online(base, demo.api_token, 4)
        _check_urgent_announcement(base, demo.api_token, data / "receivers")
        assert fleet.stop() == 0
        assert server.stop() == 0
    finally:
        broker.stop()


def _wait_all_online(base: str, token: str, count: int, timeout_s: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    devices: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        _status, devices = http_json("GET", f"{base}/api/v1/devices", token)
        if len(devices) == count and all(d["online"] for d in devices):
            return
        time.sleep(0.2)
    raise AssertionError(f"receivers not online within {timeout_s} s: {devices}")
