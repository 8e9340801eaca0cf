"""The database fails over: `loa serve` on a PostgreSQL primary with a streaming standby made by
`pg_basebackup -R`, given both in one libpq multi-host URL. The primary is SIGKILLed, the
standby promoted (`pg_ctl promote`) a few seconds later, as an operator would; the server
carries on without a restart: the next announcement reaches every receiver, the bulletin
scheduled before the failover fires once on the promoted server, and what was written before
is there. Real PostgreSQL, mosquitto, `loa serve` and `loa fleet`, loopback only, bounded waits.

Always on PostgreSQL, whatever `--db` says: replication exists only there.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from postgres import PostgresServer, make_standby
from processes import LoaProcess, http_json, plays_of, wait_devices, wait_for_status
from service_support import approved_bulletin
from support import LOOPBACK, free_ports

from broadcast.const import LOCAL_TZ, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.fleet import registry
from broadcast.fleet.brokers.mosquitto import MosquittoBroker
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from loa import seed
from wire.protocol import Priority

from .test_faults import without_daily_bulletins

pytestmark = pytest.mark.integration

RECEIVERS = 3
SCHEDULE_LEAD_S = 60  # the bulletin is due after the failover
PROMOTE_AFTER_S = 5.0  # the operator's delay, shortened: longer than the leader's 3 s check
FINAL = {"finished", "partial", "failed"}


@pytest.fixture
def postgres_pair() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    """A primary with database `loa`, and its streaming standby; both stopped by their handles."""
    root = Path(tempfile.mkdtemp(prefix="loa-standby-"))  # reachable by the postgres user
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    primary = PostgresServer(root / "primary")
    standby: PostgresServer | None = None
    try:
        primary.start()
        primary.create_database("loa")
        standby = make_standby(primary, root / "standby", password="replica-secret")
        yield primary, standby
    finally:
        for server in (standby, primary):
            if server is not None:
                server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _announce(base: str, token: str, text: str) -> tuple[int, dict]:
    return http_json(
        "POST",
        f"{base}/api/v1/announcements",
        token,
        {"text": text, "zones": ["thon-1", "thon-2"], "priority": "emergency"},
    )


def test_the_server_carries_on_when_the_standby_is_promoted(
    tmp_path: Path,
    postgres_pair: tuple[PostgresServer, PostgresServer],
    loa_processes: list[LoaProcess],
) -> None:
    primary, standby = postgres_pair
    # libpq's own multi-host form; Loa adds target_session_attrs=read-write if it is left out
    url = (
        f"postgresql://postgres@{LOOPBACK}:{primary.port},{LOOPBACK}:{standby.port}/loa"
        "?target_session_attrs=read-write"
    )
    port, mqtt_port, server_mqtt_port = free_ports(3)
    data = tmp_path / "var"
    settings = Settings(
        data_dir=data,
        port=port,
        mqtt_port=server_mqtt_port,
        device_mqtt_port=mqtt_port,
        database_url=url,
    )
    service = BroadcastService(settings, connect_mqtt=False)
    demo = seed.seed_demo(service, receivers=RECEIVERS, realtime=False)
    admin = without_daily_bulletins(service)
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
    bulletin = approved_bulletin(service, admin, "Lịch tiêm phòng", "Tiêm phòng dại lúc 7h30.")
    schedule_id = service.scheduling.schedule(
        admin,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.ONCE,
            zone_ids=["xa-hoang-hop"],
            priority=Priority.NORMAL,
            run_at=(datetime.now(UTC) + timedelta(seconds=SCHEDULE_LEAD_S))
            .astimezone(LOCAL_TZ)
            .isoformat(),
        ),
    )
    service.stop()
    broker = MosquittoBroker(
        tmp_path / "mosquitto", LOOPBACK, mqtt_port, access, server_port=server_mqtt_port
    )
    broker.start()
    try:
        server = LoaProcess(
            "serve", "--data", str(data), "--port", str(port), "--mqtt-port",
            str(server_mqtt_port), env={"LOA_DATABASE_URL": url},
        )  # fmt: skip
        loa_processes.append(server)
        server.wait_for_line("Loa server on")
        fleet = LoaProcess("fleet", "--config-dir", str(settings.devices_dir), "--count",
                           str(RECEIVERS))  # fmt: skip
        loa_processes.append(fleet)
        base, token = f"http://{LOOPBACK}:{port}", demo.api_token
        devices = {
            d["id"]
            for d in wait_devices(
                base,
                token,
                RECEIVERS,
                ready=lambda d: int(d["status"].get("manifest_items") or 0) >= 1,
                timeout_s=40,
                what="holding the scheduled bulletin",
            )
        }

        status, before = _announce(base, token, "Thông báo trước khi đổi máy chủ dữ liệu.")
        assert status == 201, before
        assert wait_for_status(base, token, before["id"], FINAL, 30)["status"] == "finished"

        killed = time.monotonic()
        primary.kill()
        # the standby is read-only until promoted: the server must not write there, and says
        # the database cannot be reached
        while time.monotonic() < killed + PROMOTE_AFTER_S:
            status, body = _announce(base, token, "Không được ghi vào máy dự phòng.")
            assert status == 503, body
            time.sleep(0.5)
        assert server.process.poll() is None, server.output[-4000:]
        promoting = time.monotonic()
        standby.promote()
        promoted = time.monotonic()

        deadline = promoted + 30
        while True:
            status, after = _announce(base, token, "Thông báo sau khi đổi máy chủ dữ liệu.")
            if status == 201:
                break
            assert time.monotonic() < deadline, (status, after, server.output[-4000:])
            time.sleep(0.2)
        written = time.monotonic()
        print(
            f"\nprimary killed -> first write on the promoted standby: {written - killed:.2f} s"
            f" (promotion {promoted - promoting:.2f} s started {promoting - killed:.2f} s after"
            f" the kill; promoted -> written {written - promoted:.2f} s)"
        )
        assert wait_for_status(base, token, after["id"], FINAL, 30)["status"] == "finished"
        for broadcast_id in (before["id"], after["id"]):
            plays = plays_of(data / "receivers", devices, broadcast_id)
            assert all(n == 1 for n in plays.values()), (broadcast_id, plays)

        # scheduling resumed on the promoted server: the bulletin fires once
        deadline = time.monotonic() + SCHEDULE_LEAD_S + 30
        fired: list[str] = []
        while time.monotonic() < deadline:
            fired = re.findall(rf"schedule {schedule_id} fired: broadcast (\d+)", server.output)
            if fired:
                break
            time.sleep(0.5)
        assert len(fired) == 1, server.output[-4000:]
        run_id = int(fired[0])
        deadline = time.monotonic() + 30
        plays = plays_of(data / "receivers", devices, run_id)
        while time.monotonic() < deadline and not all(n >= 1 for n in plays.values()):
            time.sleep(0.5)
            plays = plays_of(data / "receivers", devices, run_id)
        time.sleep(1.0)
        plays = plays_of(data / "receivers", devices, run_id)
        assert all(n == 1 for n in plays.values()), plays

        assert standby.query("SELECT pg_is_in_recovery()") == [(False,)]
        rows = standby.query(
            f"SELECT id, status FROM broadcasts WHERE id IN ({before['id']}, {after['id']})"
            " ORDER BY id",
            database="loa",
        )
        assert rows == [(before["id"], "finished"), (after["id"], "finished")], rows

        assert fleet.stop() == 0
        assert server.stop() == 0
        log = server.output
        assert "the scheduler pauses" in log, log[-4000:]
        assert "resumes the scheduler" in log, log[-4000:]
        assert "stops leading" not in log, log[-4000:]
        assert "database unreachable" in log and "Exception on" not in log, log[-4000:]
        assert len(re.findall(rf"schedule {schedule_id} fired", log)) == 1, log[-4000:]
    finally:
        broker.stop()
