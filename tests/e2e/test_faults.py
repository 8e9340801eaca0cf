"""Faults with real processes: the broker restarts during a dispatch, the server dies before a
planned run. Real brokers (amqtt and mosquitto with persistence), `loa serve`, `loa fleet`
(FileSink receivers), loopback only; every wait is bounded.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from processes import (
    LoaProcess,
    http_json,
    played_lines,
    plays_of,
    start_server_and_fleet,
    wait_devices,
)
from service_support import approved_bulletin
from support import LOOPBACK, AmqttProcess, free_ports, loa_passwords

from broadcast.const import LOCAL_TZ, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.fleet import registry
from broadcast.fleet.brokers import BrokerAccess, BrokerError
from broadcast.fleet.brokers.mosquitto import MosquittoBroker
from broadcast.fleet.brokers.nats import NatsBroker
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from broadcast.store.db import Database
from broadcast.store.models import Broadcast, Schedule, User
from loa import seed
from wire.protocol import Priority

FINAL = {"finished", "partial", "failed", "cancelled", "expired"}
ALERT = "Thông báo khẩn: nước sông Mã dâng cao, bà con vùng trũng di dời ngay."


def make_broker(
    kind: str, directory: Path, port: int, access: BrokerAccess, server_port: int, data: Path
):  # type: ignore[no-untyped-def]
    """amqtt and nats have one listener for all (the server then uses `port` too); nats takes
    the passwords of Loa's data directory `data`."""
    if kind == "amqtt":
        return AmqttProcess(directory, LOOPBACK, port, access)
    if kind == "nats":
        return NatsBroker(directory, LOOPBACK, port, access, loa_passwords(data))
    return MosquittoBroker(directory, LOOPBACK, port, access, server_port=server_port)


def start_broker(broker, attempts: int = 50) -> None:  # type: ignore[no-untyped-def]
    """Start (again) on the same port; the old socket may linger a moment after a stop."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            broker.start()
            return
        except BrokerError as exc:  # the port is not free yet
            last = exc
            if "already" not in str(exc):
                raise
            time.sleep(0.2)
    raise AssertionError(f"broker did not restart on its port: {last}")


def without_daily_bulletins(service: BroadcastService) -> int:
    with service.db.session() as session:
        admin = session.query(User).filter(User.username == "admin").one().id
        daily = [s.id for s in session.query(Schedule).filter(Schedule.active.is_(True))]
    for schedule_id in daily:
        service.scheduling.cancel(admin, schedule_id)
    return admin


def test_broker_restart_during_dispatch(
    tmp_path: Path, broker_kind: str, loa_processes: list[LoaProcess]
) -> None:
    count = 50
    port, mqtt_port, own_port = free_ports(3)
    data = tmp_path / "var"
    # mosquitto gives the server a listener of its own; amqtt one for all
    server_mqtt_port = own_port if broker_kind == "mosquitto" else mqtt_port
    settings = Settings(
        data_dir=data, port=port, mqtt_port=server_mqtt_port, device_mqtt_port=mqtt_port
    )
    service = BroadcastService(settings, connect_mqtt=False)
    demo = seed.seed_demo(service, receivers=count, realtime=False)
    without_daily_bulletins(service)
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
    service.stop()

    broker = make_broker(
        broker_kind, tmp_path / broker_kind, mqtt_port, access, settings.mqtt_port, data
    )
    start_broker(broker)
    try:
        server, fleet = start_server_and_fleet(
            loa_processes, data, port, settings.mqtt_port, settings.devices_dir, count
        )
        base, token = f"http://127.0.0.1:{port}", demo.api_token
        devices = {d["id"] for d in wait_devices(base, token, count, timeout_s=60)}

        status, created = http_json(
            "POST",
            f"{base}/api/v1/announcements",
            token,
            {"text": ALERT, "zones": ["thon-1", "thon-2"], "priority": "emergency"},
        )
        assert status == 201, created
        broadcast_id = created["id"]
        broker.stop()  # mid-dispatch: the command is out, the answer-back is not all in
        start_broker(broker)

        # mosquitto keeps the sessions; amqtt forgets them and the server re-sends what got no
        # answer (broadcast.sending.redelivery): both end with every receiver having played it once
        deadline = time.monotonic() + 60
        body: dict = {}
        while time.monotonic() < deadline:
            _s, body = http_json("GET", f"{base}/api/v1/announcements/{broadcast_id}", token)
            if body["status"] in FINAL and all(d["state"] in FINAL for d in body["deliveries"]):
                break
            time.sleep(0.5)
        time.sleep(2.0)  # let late redeliveries arrive before counting plays
        plays = plays_of(data / "receivers", devices, broadcast_id)
        twice = {device: n for device, n in plays.items() if n > 1}
        assert not twice, f"played more than once: {twice}"
        assert {d["device"] for d in body["deliveries"]} == devices
        assert body["status"] == "finished", body
        assert all(d["state"] == "finished" for d in body["deliveries"]), body["deliveries"]
        assert set(plays) == devices and all(n == 1 for n in plays.values()), plays
        assert fleet.stop() == 0
        assert server.stop() == 0
        assert "Traceback" not in server.output, server.output[-4000:]
    finally:
        broker.stop()


def test_server_killed_before_scheduled_bulletin(
    tmp_path: Path, broker_kind: str, loa_processes: list[LoaProcess]
) -> None:
    count = 10
    lead_s = 25
    port, mqtt_port, own_port = free_ports(3)
    data = tmp_path / "var"
    # mosquitto gives the server a listener of its own; amqtt one for all
    server_mqtt_port = own_port if broker_kind == "mosquitto" else mqtt_port
    settings = Settings(
        data_dir=data, port=port, mqtt_port=server_mqtt_port, device_mqtt_port=mqtt_port
    )
    service = BroadcastService(settings, connect_mqtt=False)
    demo = seed.seed_demo(service, receivers=count, realtime=False)
    admin = without_daily_bulletins(service)
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
    bulletin = approved_bulletin(service, admin, "Lịch tiêm phòng", "Tiêm phòng dại lúc 7h30.")
    run_at = datetime.now(UTC) + timedelta(seconds=lead_s)
    schedule_id = service.scheduling.schedule(
        admin,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.ONCE,
            zone_ids=["xa-hoang-hop"],
            priority=Priority.NORMAL,
            run_at=run_at.astimezone(LOCAL_TZ).isoformat(),
        ),
    )
    service.stop()

    broker = make_broker(
        broker_kind, tmp_path / broker_kind, mqtt_port, access, settings.mqtt_port, data
    )
    start_broker(broker)
    database = Database(settings.database_url)
    try:
        server, fleet = start_server_and_fleet(
            loa_processes, data, port, settings.mqtt_port, settings.devices_dir, count
        )
        base, token = f"http://127.0.0.1:{port}", demo.api_token
        with database.session() as session:
            row = session.query(Broadcast).filter(Broadcast.schedule_id == schedule_id).one()
            item_id, play_at = row.item_id, row.play_at
        devices = wait_devices(
            base,
            token,
            count,
            ready=lambda d: (
                int(d["status"].get("manifest_items") or 0) >= 1
                and bool(d["status"].get("cache_complete", True))
            ),
            timeout_s=lead_s - 5,
            what="holding the manifest",
        )
        seconds_left = (play_at - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
        assert seconds_left > 2, f"too late to kill the server first: {seconds_left:.1f} s left"
        server.kill()  # SIGKILL: no goodbye, no more commands; the fleet runs on its own
        assert server.process.returncode != 0

        planned = play_at.replace(tzinfo=UTC) if play_at.tzinfo is None else play_at
        deadline = time.monotonic() + seconds_left + 10
        pending = {d["id"] for d in devices}
        while pending and time.monotonic() < deadline:
            pending = {
                device_id
                for device_id in pending
                if not any(
                    p["item_id"] == item_id for p in played_lines(data / "receivers", device_id)
                )
            }
            time.sleep(0.2)
        assert not pending, f"never played without the server: {sorted(pending)}"
        for device in devices:
            plays = [
                p for p in played_lines(data / "receivers", device["id"]) if p["item_id"] == item_id
            ]
            assert len(plays) == 1, (device["id"], plays)
            started = datetime.fromisoformat(plays[0]["started_at"])
            late = (started - planned).total_seconds()
            assert abs(late) <= 1.0, (device["id"], late)
        assert fleet.stop() == 0
    finally:
        database.dispose()
        broker.stop()
