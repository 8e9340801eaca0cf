"""Two servers, one database: two `loa serve` (as on two hosts: separate data directories, the
same signing key and secrets copied) on one real PostgreSQL, mosquitto, and `loa fleet`. The one
holding the scheduler lock is killed (SIGKILL) just before a bulletin is due, in a run of one
bulletin every 30 s; the other takes over within the lock's retry interval, and every bulletin
plays exactly once on every receiver, each fired once and all answered back. A bulletin
scheduled on the survivor after the kill is fetched from it, and media rendered on the dead
server is served by the survivor from the database (no shared disk).

Every minute cannot be one schedule (its runs must be 15 min apart): the cadence is made of
one-off schedules, as many bulletins of a day are.
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from processes import LoaProcess, http_json, plays_of, wait_devices
from service_support import approved_bulletin
from support import LOOPBACK, free_port, free_ports

from broadcast.const import LOCAL_TZ, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.fleet import registry
from broadcast.fleet.brokers.mosquitto import MosquittoBroker
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from broadcast.store.models import Schedule
from loa import seed
from wire.protocol import Priority

from .test_faults import without_daily_bulletins

pytestmark = pytest.mark.integration  # PostgreSQL, mosquitto, two servers and receivers

RECEIVERS = 4
RUNS = 4  # before the kill, one every CADENCE_S
CADENCE_S = 30
FIRST_RUN_S = 55  # from scheduling to the first run: servers and receivers start meanwhile
KILL_BEFORE_S = 2  # the leader dies this long before the second run
TAKEOVER_BOUND_S = 10.0  # lock_retry_s (3 s) plus a loaded machine's slack
FINAL = {"finished", "partial", "failed"}


def _wait_line(process: LoaProcess, pattern: str, timeout_s: float) -> tuple[re.Match[str], float]:
    """The first output line matching `pattern`, and when it was seen (monotonic)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in list(process.lines):
            found = re.search(pattern, line)
            if found:
                return found, time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"no line matching {pattern!r} within {timeout_s} s:\n{process.output}")


def _serve(data: Path, port: int, mqtt_port: int) -> LoaProcess:
    return LoaProcess(
        "serve", "--data", str(data), "--port", str(port), "--mqtt-port", str(mqtt_port)
    )


def test_the_leader_killed_the_other_server_takes_over_and_nothing_fires_twice_or_is_lost(
    tmp_path: Path,
    postgres_server: object,
    monkeypatch: pytest.MonkeyPatch,
    loa_processes: list[LoaProcess],
) -> None:
    url = postgres_server.create_database(f"loa_two_{uuid.uuid4().hex[:12]}")  # type: ignore[attr-defined]
    monkeypatch.setenv("LOA_DATABASE_URL", url)  # this process's services and both servers
    port_a, port_b, mqtt_port = free_ports(3)
    server_mqtt_port = free_port()  # mosquitto: the servers have a listener of their own
    node_a, node_b = tmp_path / "node-a", tmp_path / "node-b"
    settings = Settings(
        data_dir=node_a, port=port_a, mqtt_port=server_mqtt_port, device_mqtt_port=mqtt_port
    )
    service = BroadcastService(settings, connect_mqtt=False)
    demo = seed.seed_demo(service, receivers=RECEIVERS, realtime=False)
    admin = without_daily_bulletins(service)
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
    first = datetime.now(UTC) + timedelta(seconds=FIRST_RUN_S)
    schedules = []
    for index in range(RUNS):
        bulletin = approved_bulletin(
            service, admin, f"Bản tin số {index + 1}", f"Bản tin số {index + 1} trong ngày."
        )
        run_at = first + timedelta(seconds=CADENCE_S * index)
        schedules.append(
            service.scheduling.schedule(
                admin,
                ScheduleRequest(
                    bulletin_id=bulletin,
                    kind=ScheduleKind.ONCE,
                    zone_ids=["xa-hoang-hop"],
                    priority=Priority.NORMAL,
                    run_at=run_at.astimezone(LOCAL_TZ).isoformat(),
                ),
            )
        )
    with service.db.session() as session:
        media = [session.get(Schedule, schedule_id).media_sha256 for schedule_id in schedules]
    service.stop()
    assert all(media), media
    # the second node: its own data directory, the first one's key and secrets (provisioning)
    (node_b / "keys").mkdir(parents=True)
    shutil.copy2(node_a / "keys" / "server_ed25519.pem", node_b / "keys")
    shutil.copy2(node_a / "secrets.json", node_b)

    broker = MosquittoBroker(
        tmp_path / "mosquitto", LOOPBACK, mqtt_port, access, server_port=server_mqtt_port
    )
    broker.start()
    try:
        server_a = _serve(node_a, port_a, server_mqtt_port)
        loa_processes.append(server_a)
        server_a.wait_for_line("Loa server on")
        leader_pid = _wait_line(server_a, r"this process \(pid (\d+)\) runs the scheduler", 30)
        assert int(leader_pid[0][1]) == server_a.process.pid
        server_b = _serve(node_b, port_b, server_mqtt_port)
        loa_processes.append(server_b)
        server_b.wait_for_line("Loa server on")
        _wait_line(server_b, r"another process holds .* stands by", 30)
        fleet = LoaProcess(
            "fleet", "--config-dir", str(settings.devices_dir), "--count", str(RECEIVERS)
        )
        loa_processes.append(fleet)
        base_a, base_b, token = (
            f"http://{LOOPBACK}:{port_a}",
            f"http://{LOOPBACK}:{port_b}",
            demo.api_token,
        )
        devices = {
            d["id"]
            for d in wait_devices(
                base_b,  # the standby reads the same database
                token,
                RECEIVERS,
                ready=lambda d: (
                    int(d["status"].get("manifest_items") or 0) >= RUNS
                    and bool(d["status"].get("cache_complete"))
                ),
                timeout_s=FIRST_RUN_S - 15,
                what="holding every run and its media",
            )
        }

        # media rendered on node A, served by node B from the database: ETag, Range, 304
        sha = media[0]
        assert not (node_b / "media" / sha[:2] / f"{sha}.mp3").exists()
        with urllib.request.urlopen(f"{base_b}/media/{sha}.mp3", timeout=10) as response:
            assert response.headers["ETag"] == f'"{sha}"'
            whole = response.read()
        request = urllib.request.Request(
            f"{base_b}/media/{sha}.mp3", headers={"Range": "bytes=0-99"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 206 and response.read() == whole[:100]
        with urllib.request.urlopen(f"{base_a}/media/{sha}.mp3", timeout=10) as response:
            assert response.read() == whole

        # the leader dies just before the second run
        kill_at = first + timedelta(seconds=CADENCE_S - KILL_BEFORE_S)
        time.sleep(max(0.0, (kill_at - datetime.now(UTC)).total_seconds()))
        server_a.kill()
        killed = time.monotonic()
        found, led = _wait_line(
            server_b, r"this process \(pid (\d+)\) runs the scheduler", TAKEOVER_BOUND_S + 20
        )
        takeover_s = led - killed
        print(f"takeover after SIGKILL of the leader: {takeover_s:.2f} s")
        assert int(found[1]) == server_b.process.pid
        assert takeover_s <= TAKEOVER_BOUND_S, takeover_s

        # a bulletin made on the survivor after the kill: its media can only come from node B
        status, bulletin = http_json(
            "POST",
            f"{base_b}/api/v1/bulletins",
            token,
            {"title": "Sau sự cố", "text": "Bản tin làm sau khi máy chủ một dừng.", "submit": True},
        )
        assert status == 201, bulletin
        status, approved = http_json(
            "POST", f"{base_b}/api/v1/bulletins/{bulletin['id']}/approve", token, {}
        )
        assert status == 200, approved
        late_at = first + timedelta(seconds=CADENCE_S * 2.5)
        assert (late_at - datetime.now(UTC)).total_seconds() > 12, "too little time left"
        status, late = http_json(
            "POST",
            f"{base_b}/api/v1/schedules",
            token,
            {
                "bulletin": bulletin["id"],
                "kind": "once",
                "run_at": late_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M:%S"),
                "zones": ["xa-hoang-hop"],
            },
        )
        assert status == 201, late
        schedules.append(late["id"])

        deadline = time.monotonic() + CADENCE_S * RUNS + 30
        done: list[dict] = []
        listed: list[dict] = []
        while time.monotonic() < deadline:
            _s, listed = http_json("GET", f"{base_b}/api/v1/announcements?limit=50", token)
            done = [b for b in listed if b["schedule"] in schedules and b["status"] in FINAL]
            if len(done) == len(schedules):
                break
            time.sleep(1.0)
        if len(done) != len(schedules):
            left = [b["id"] for b in listed if b not in done]
            details = [
                http_json("GET", f"{base_b}/api/v1/announcements/{n}", token)[1] for n in left
            ]
            shown = [(d["id"], d["status"], [x["state"] for x in d["deliveries"]]) for d in details]
            raise AssertionError(f"runs not settled: {shown}")
        assert all(b["status"] == "finished" for b in done), done
        for row in done:  # every receiver played every run exactly once
            plays = plays_of(settings.receivers_dir, devices, row["id"])
            assert all(n == 1 for n in plays.values()), (row["id"], plays)

        # fired once each, across both servers' logs
        log = server_a.output + "\n" + server_b.output
        for row in done:
            fired = re.findall(rf"schedule {row['schedule']} fired: broadcast (\d+)", log)
            assert fired == [str(row["id"])], (row, fired)
        # the new bulletin's media came from node B, to every receiver
        fetched_from_b = re.findall(rf"(\S+): fetched \w+… from {LOOPBACK}:{port_b}", fleet.output)
        assert set(fetched_from_b) >= devices, fleet.output[-3000:]

        assert fleet.stop() == 0
        assert server_b.stop() == 0
        assert "Traceback" not in server_b.output, server_b.output[-4000:]
    finally:
        broker.stop()
