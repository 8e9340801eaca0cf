"""A compressed day of a commune with 200 receivers: two planned bulletins a few seconds apart,
a relay (tiếp sóng) of a local stream, and an emergency stopped at once with a correction.

Real processes: mosquitto (persistence on), `loa serve`, `loa fleet --count 200` (FileSink
receivers), a loopback HTTP server standing in for the provincial radio stream.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from processes import (
    LoaProcess,
    http_json,
    played_lines,
    start_server_and_fleet,
    wait_devices,
    wait_for_status,
)
from service_support import approved_bulletin
from support import LOOPBACK, free_port, free_ports

from broadcast.const import LOCAL_TZ, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.fleet import registry
from broadcast.fleet.brokers.mosquitto import MosquittoBroker
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from broadcast.store.db import Database
from broadcast.store.models import Broadcast, Schedule, User
from loa import seed
from wire.protocol import Priority

COUNT = 200
LEAD_S = 40  # 200 receivers start, fetch their manifests and prefetch the media
GAP_S = 3  # the two bulletins, in different villages
RELAY_AFTER_S = 15
RELAY_BYTES = 16 * 1024
FINAL_DELIVERY = {"finished", "failed"}


def wait_for_deliveries(
    base: str, token: str, broadcast_id: int, states: set[str], timeout_s: float
) -> dict:
    """The broadcast once every delivery is in one of `states` (fails after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    body: dict = {}
    while time.monotonic() < deadline:
        _status, body = http_json("GET", f"{base}/api/v1/announcements/{broadcast_id}", token)
        if all(d["state"] in states for d in body["deliveries"]):
            return body
        time.sleep(0.5)
    raise AssertionError(f"deliveries of {broadcast_id} not all {states}: {body}")


class _Stream(BaseHTTPRequestHandler):
    """A short 'live' MP3 stream: a few frames, then the connection closes (bounded)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.end_headers()
        frame = b"\xff\xfb\x90\x64" + b"\x00" * 413
        sent = 0
        while sent < RELAY_BYTES:
            self.wfile.write(frame)
            sent += len(frame)
        self.wfile.flush()

    def log_message(self, *_args: Any) -> None:
        pass


class _StreamServer(ThreadingHTTPServer):
    """The provincial radio's stream server. A village's receivers now connect within the same
    few milliseconds: with the standard library's backlog of 5, most of their connection
    attempts were dropped and timed out under load, which no real stream server (Icecast,
    nginx: a backlog of hundreds) does."""

    request_queue_size = 128


def _at(offset_s: float, start: datetime) -> str:
    return (start + timedelta(seconds=offset_s)).astimezone(LOCAL_TZ).isoformat()


def test_fleet_day(tmp_path: Path, loa_processes: list[LoaProcess]) -> None:
    stream = _StreamServer((LOOPBACK, 0), _Stream)
    threading.Thread(target=stream.serve_forever, daemon=True).start()
    relay_url = f"http://{LOOPBACK}:{stream.server_address[1]}/live.mp3"

    port, mqtt_port = free_ports(2)
    data = tmp_path / "var"
    receivers = data / "receivers"
    server_mqtt_port = free_port()  # mosquitto: the server has a listener of its own
    settings = Settings(
        data_dir=data, port=port, mqtt_port=server_mqtt_port, device_mqtt_port=mqtt_port
    )
    service = BroadcastService(settings, connect_mqtt=False)
    demo = seed.seed_demo(service, receivers=COUNT, realtime=False)
    with service.db.session() as session:
        admin = session.query(User).filter(User.username == "admin").one().id
        daily = [s.id for s in session.query(Schedule).filter(Schedule.active.is_(True))]
        access = registry.broker_access(session, service.secrets.mqtt_password)
    for schedule_id in daily:
        service.scheduling.cancel(admin, schedule_id)
    start = datetime.now(UTC) + timedelta(seconds=LEAD_S)
    plan = [
        (
            approved_bulletin(service, admin, "Bản tin sáng", "Lịch tiêm phòng dại lúc 7h30."),
            0,
            "thon-1",
        ),
        (approved_bulletin(service, admin, "Bản tin trưa", "Họp dân lúc 14h."), GAP_S, "thon-2"),
        # the relay's nominal airtime is a whole minute: after the first bulletin, on its village
        (
            approved_bulletin(service, admin, "Tiếp sóng đài tỉnh", relay_url=relay_url, minutes=1),
            RELAY_AFTER_S,
            "thon-1",
        ),
    ]
    schedule_ids = [
        service.scheduling.schedule(
            admin,
            ScheduleRequest(
                bulletin_id=bulletin,
                kind=ScheduleKind.ONCE,
                zone_ids=[zone],
                priority=Priority.NORMAL,
                run_at=_at(offset, start),
            ),
        )
        for bulletin, offset, zone in plan
    ]
    service.stop()

    broker = MosquittoBroker(
        tmp_path / "mosquitto", LOOPBACK, mqtt_port, access, server_port=server_mqtt_port
    )
    broker.start()
    database = Database(settings.database_url)
    try:
        server, fleet = start_server_and_fleet(
            loa_processes, data, port, settings.mqtt_port, settings.devices_dir, COUNT
        )
        base, token = f"http://127.0.0.1:{port}", demo.api_token
        devices = {d["id"] for d in wait_devices(base, token, COUNT, timeout_s=LEAD_S - 5)}

        with database.session() as session:
            runs = [
                session.query(Broadcast).filter(Broadcast.schedule_id == sid).one().id
                for sid in schedule_ids
            ]
        _status, zone_list = http_json("GET", f"{base}/api/v1/zones", token)
        village = {zone["id"]: set(zone["devices"]) for zone in zone_list}
        for run_id, (_bulletin, _offset, zone) in zip(runs, plan, strict=True):
            body = wait_for_status(base, token, run_id, {"finished", "partial", "failed"}, 60)
            unfinished = [d for d in body["deliveries"] if d["state"] != "finished"]
            assert body["status"] == "finished", (run_id, body["status"], unfinished)
            assert {d["device"] for d in body["deliveries"]} == village[zone]
            states = {d["device"]: d["state"] for d in body["deliveries"]}
            assert set(states.values()) == {"finished"}, states
            for device_id in devices:
                plays = [
                    p for p in played_lines(receivers, device_id) if p["broadcast_id"] == run_id
                ]
                assert len(plays) == (device_id in village[zone]), (device_id, run_id, plays)
        relay_plays = [
            p for d in devices for p in played_lines(receivers, d) if p["broadcast_id"] == runs[2]
        ]
        assert all(p["content"] == "relay" and p["bytes"] > 0 for p in relay_plays), relay_plays

        # an emergency, stopped at once and corrected
        status, wrong = http_json(
            "POST",
            f"{base}/api/v1/announcements",
            token,
            {
                "text": "Cắt điện toàn xã từ 14h.",
                "zones": ["xa-hoang-hop"],
                "priority": "emergency",
            },
        )
        assert status == 201, wrong
        status, cancelled = http_json(
            "POST",
            f"{base}/api/v1/announcements/{wrong['id']}/cancel",
            token,
            {"correction": "Đính chính: cắt điện từ 16h, không phải 14h."},
        )
        stopped_at = datetime.now(UTC)
        assert status == 200, cancelled
        assert cancelled["cancelled"]["status"] == "cancelled"
        correction = wait_for_status(
            base, token, cancelled["correction"]["id"], {"finished", "partial", "failed"}, 60
        )
        assert correction["status"] == "finished", correction["status"]
        assert {d["device"] for d in correction["deliveries"]} == devices
        assert all(d["state"] == "finished" for d in correction["deliveries"])
        again = wait_for_deliveries(base, token, wrong["id"], {"stopped"}, 30)
        assert again["status"] == "cancelled"
        assert {d["device"] for d in again["deliveries"]} == devices
        late = []
        for device_id in devices:
            for p in played_lines(receivers, device_id):
                if (
                    p["broadcast_id"] == wrong["id"]
                    and datetime.fromisoformat(p["started_at"]) > stopped_at
                ):
                    late.append((device_id, p["started_at"]))
            fixed = [
                p
                for p in played_lines(receivers, device_id)
                if p["broadcast_id"] == correction["id"]
            ]
            assert len(fixed) == 1, (device_id, fixed)
        assert not late, f"played the cancelled emergency after the stop: {late}"
        assert fleet.stop() == 0
        assert server.stop() == 0
        assert "Traceback" not in server.output, server.output[-4000:]
    finally:
        database.dispose()
        broker.stop()
        stream.shutdown()
