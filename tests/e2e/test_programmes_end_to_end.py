"""Planned runs end to end: schedule → manifest (retained, signed) → receivers play it from
their own clocks at its time, together → answer-back fills the broadcast log. Then an emergency
is stopped and corrected through the API.

Real processes: mosquitto, `loa serve`, `loa fleet` (simulated receivers writing what they play).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from processes import LoaProcess, http_json, played_lines, wait_for_status
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

LEAD_S = 30  # time for the server and the receivers to start and fetch the manifest


def _plan(service: BroadcastService) -> int:
    """The demo commune without its daily bulletins, and one run soon in Thôn 1."""
    with service.db.session() as session:
        admin = session.query(User).filter(User.username == "admin").one().id
        daily = [s.id for s in session.query(Schedule).filter(Schedule.active.is_(True))]
    for schedule_id in daily:
        service.scheduling.cancel(admin, schedule_id)
    bulletin = approved_bulletin(service, admin, "Lịch tiêm phòng", "Tiêm phòng dại lúc 7h30.")
    at = datetime.now(UTC) + timedelta(seconds=LEAD_S)
    return service.scheduling.schedule(
        admin,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.ONCE,
            zone_ids=["thon-1"],
            priority=Priority.NORMAL,
            run_at=at.astimezone(LOCAL_TZ).isoformat(),
        ),
    )


def test_a_planned_run_plays_together_from_the_manifests(
    tmp_path: Path, loa_processes: list[LoaProcess]
) -> None:
    port, mqtt_port = free_ports(2)
    data = tmp_path / "var"
    server_mqtt_port = free_port()  # mosquitto: the server has a listener of its own
    settings = Settings(
        data_dir=data, port=port, mqtt_port=server_mqtt_port, device_mqtt_port=mqtt_port
    )
    service = BroadcastService(settings, connect_mqtt=False)
    demo = seed.seed_demo(service, receivers=4, realtime=False)
    schedule_id = _plan(service)
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
    service.stop()

    broker = MosquittoBroker(
        tmp_path / "mosquitto", LOOPBACK, mqtt_port, access, server_port=server_mqtt_port
    )
    broker.start()
    database = Database(settings.database_url)
    try:
        server = LoaProcess(
            "serve", "--data", str(data), "--port", str(port), "--mqtt-port", str(server_mqtt_port)
        )
        loa_processes.append(server)
        server.wait_for_line("Loa server on")
        fleet = LoaProcess("fleet", "--config-dir", str(settings.devices_dir), "--count", "4")
        loa_processes.append(fleet)
        base, token = f"http://127.0.0.1:{port}", demo.api_token

        with database.session() as session:
            row = session.query(Broadcast).filter(Broadcast.schedule_id == schedule_id).one()
            run_id, item_id, play_at = row.id, row.item_id, row.play_at
        assert row.status == "scheduled"
        body = wait_for_status(base, token, run_id, {"finished", "partial", "failed"}, 120)
        assert body["status"] == "finished", body
        assert body["item_id"] == item_id and body["source"] == "schedule"
        village = {d["device"] for d in body["deliveries"]}
        assert village == {"loa-thon-1-01", "loa-thon-1-02"}
        starts = []
        for device_id in village:
            plays = [
                p for p in played_lines(data / "receivers", device_id) if p["item_id"] == item_id
            ]
            assert len(plays) == 1, (device_id, plays)
            assert plays[0]["broadcast_id"] == run_id
            starts.append(datetime.fromisoformat(plays[0]["started_at"]).replace(tzinfo=None))
        planned = play_at
        assert all(abs((start - planned).total_seconds()) < 2.0 for start in starts), starts
        assert (max(starts) - min(starts)).total_seconds() < 1.0  # together
        for other in ("loa-thon-2-01", "loa-thon-2-02"):
            assert all(p["item_id"] != item_id for p in played_lines(data / "receivers", other))

        # an emergency, stopped and corrected through the API
        status, wrong = http_json(
            "POST",
            f"{base}/api/v1/announcements",
            token,
            {"text": "Cắt điện toàn thôn từ 14h.", "zones": ["thon-2"], "priority": "emergency"},
        )
        assert status == 201, wrong
        wait_for_status(base, token, wrong["id"], {"dispatched", "finished", "partial"}, 60)
        status, cancelled = http_json(
            "POST",
            f"{base}/api/v1/announcements/{wrong['id']}/cancel",
            token,
            {"correction": "Đính chính: cắt điện từ 16h, không phải 14h."},
        )
        assert status == 200, cancelled
        assert cancelled["cancelled"]["status"] == "cancelled"
        correction = wait_for_status(
            base, token, cancelled["correction"]["id"], {"finished", "partial", "failed"}, 120
        )
        assert correction["status"] == "finished", correction
        assert correction["corrects"] == wrong["id"]
        for device_id in ("loa-thon-2-01", "loa-thon-2-02"):
            assert any(
                p["broadcast_id"] == correction["id"]
                for p in played_lines(data / "receivers", device_id)
            )
        time.sleep(1.0)
        _status, again = http_json("GET", f"{base}/api/v1/announcements/{wrong['id']}", token)
        assert again["status"] == "cancelled"  # final, whatever the receivers report after
        assert fleet.stop() == 0
        assert server.stop() == 0
        assert "Traceback" not in server.output, server.output
    finally:
        database.dispose()
        broker.stop()
