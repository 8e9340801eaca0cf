"""One scheduler per data directory, with real processes and a real broker.

Three service processes share a data directory (as web workers would): exactly one plans and
fires the run (one broadcast row, one "fired" log line) and publishes the manifest that carries
it (counted on a subscriber); when that process dies, another takes over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from service_support import add_devices, approved_bulletin, make_service, seed_commune, wait_for
from support import LOOPBACK, REPO_ROOT, MqttProbe, RunningBroker, connected, free_port

from broadcast.const import LOCAL_TZ, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.fleet import registry
from broadcast.fleet.brokers import BrokerAccess, BrokerUser, hash_password
from broadcast.fleet.brokers.embedded import EmbeddedBroker
from broadcast.store.db import Database
from broadcast.store.models import Broadcast
from wire import protocol
from wire.config import ReceiverConfig
from wire.protocol import Priority

pytestmark = pytest.mark.integration  # service processes and an embedded broker

HELPER = Path(__file__).with_name("service_process.py")
MANIFEST = protocol.device_manifest_topic("loa-a-01")


class ServiceProcess:
    def __init__(self, data: Path, mqtt_port: int, log: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(HELPER), "--data", str(data), "--mqtt-port", str(mqtt_port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.stop()


def _manifests_with(probe: MqttProbe, item_id: str) -> list[protocol.Command]:
    found = []
    for message in probe.drain(0.2):
        probe.seen.append(message)  # keep them for the next count
        if message.topic == MANIFEST:
            command = json.loads(message.payload)
            if any(item["item_id"] == item_id for item in command["body"]["items"]):
                found.append(command)
    probe.seen.clear()
    return found


def test_three_processes_run_one_scheduler(tmp_path: Path, processes: list[ServiceProcess]) -> None:
    data, port = tmp_path / "data", free_port()
    setup = make_service(data, mqtt_port=port)
    users = seed_commune(setup)
    add_devices(setup, {"loa-a-01": "thon-a"})
    bulletin = approved_bulletin(setup, users.officer, "Lịch tiêm", "Tiêm chủng lúc 7h30.")
    run_at = datetime.now(UTC) + timedelta(seconds=15)
    schedule_id = setup.scheduling.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.ONCE,
            zone_ids=["thon-a"],
            priority=Priority.NORMAL,
            run_at=run_at.astimezone(LOCAL_TZ).isoformat(),
        ),
    )
    with setup.db.session() as session:
        access = registry.broker_access(session, setup.secrets.mqtt_password)
    public_key = setup.signing_key.public_key()
    setup.stop()
    observer = BrokerUser("observer", hash_password("observer-pw"), subscribe=("loa/v1/#",))
    broker = EmbeddedBroker(LOOPBACK, port, BrokerAccess((*access.users, observer)))
    broker.start()
    running = RunningBroker("amqtt", LOOPBACK, port)
    probe = connected(running, "observer", "observer-pw", "observer").subscribe_ok("loa/v1/#")
    database = Database(setup.settings.database_url)
    try:
        for index in range(3):
            processes.append(ServiceProcess(data, port, tmp_path / f"service-{index}.log"))
        wait_for(lambda: all("ready" in p.output for p in processes), 60, "3 services ready")
        leaders = [p for p in processes if "runs the scheduler" in p.output]
        assert len(leaders) == 1, [p.output for p in processes]
        leader = leaders[0]
        assert sum("stands by" in p.output for p in processes) == 2

        def rows() -> list[Broadcast]:
            with database.session() as session:
                return list(session.query(Broadcast).filter(Broadcast.schedule_id == schedule_id))

        wait_for(lambda: datetime.now(UTC) > run_at + timedelta(seconds=2), 30)
        wait_for(lambda: [r for r in rows() if r.status == "dispatched"], 10, "the run fired")
        [row] = rows()
        fired = f"schedule {schedule_id} fired: broadcast {row.id}"
        assert sum(p.output.count(fired) for p in processes) == 1
        assert fired in leader.output
        manifests = _manifests_with(probe, row.item_id)
        assert len(manifests) == 1  # published once, by the leader
        assert manifests[0]["stream"] == MANIFEST

        # a receiver coming online gets the retained manifest, signed for its topic
        config = ReceiverConfig.load(data / "devices" / "loa-a-01.json")
        device = connected(running, "loa-a-01", config.mqtt.password, "loa-a-01")
        device.subscribe_ok(MANIFEST)
        retained = device.expect(MANIFEST)
        command = protocol.verify_command(retained.payload, public_key)
        assert retained.retain and command.stream == MANIFEST
        assert [item.item_id for item in command.body.items] == [row.item_id]  # type: ignore[union-attr]
        device.close()

        # the leader dies without a word: a standby takes over within its retry interval
        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=10)
        others = [p for p in processes if p is not leader]
        wait_for(
            lambda: [p for p in others if "runs the scheduler" in p.output],
            15,
            "a standby taking over",
        )
        time.sleep(1.0)
        assert len(rows()) == 1
        assert sum(p.output.count(fired) for p in processes) == 1
        assert all("Traceback" not in p.output for p in processes)
    finally:
        probe.close()
        database.dispose()
        for process in processes:
            process.stop()
        broker.stop()
