"""The embedded broker in-process and as `serve`: start/stop, taken port, bad access file, logs."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import LOOPBACK, AmqttProcess, MqttProbe, RunningBroker, connected, free_port

from broadcast.fleet.brokers import BrokerAccess, BrokerError, port_is_free, server_user
from broadcast.fleet.brokers.access import device_user
from broadcast.fleet.brokers.embedded import EmbeddedBroker, serve

_LOGGER = logging.getLogger(__name__)

ACCESS = BrokerAccess((server_user("loa-server", "pw"),))


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another program is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_embedded_broker_in_a_thread_starts_serves_and_stops() -> None:
    port = free_port()
    broker = EmbeddedBroker(LOOPBACK, port, ACCESS)
    broker.start()
    try:
        assert not port_is_free(LOOPBACK, port)
        connected(RunningBroker("amqtt", LOOPBACK, port), "loa-server", "pw").close()
    finally:
        broker.stop()
    broker.stop()  # idempotent
    assert port_is_free(LOOPBACK, port)
    assert not any(t.name == f"mqtt-broker-{port}" for t in threading.enumerate())


def test_embedded_broker_reports_a_taken_port(taken_port: int) -> None:
    broker = EmbeddedBroker(LOOPBACK, taken_port, ACCESS)
    with pytest.raises(BrokerError) as caught:
        broker.start()
    assert str(caught.value) == f"MQTT port {LOOPBACK}:{taken_port} is already in use"
    broker.stop()


def test_embedded_broker_reports_an_address_it_cannot_use() -> None:
    broker = EmbeddedBroker("192.0.2.1", free_port(), ACCESS)  # TEST-NET: not on this host
    with pytest.raises(BrokerError, match=r"cannot listen on MQTT 192\.0\.2\.1:\d+"):
        broker.start()


def test_serve_reports_a_taken_port_in_one_line(
    tmp_path: Path, taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    access_path = tmp_path / "broker-access.json"
    ACCESS.save(access_path)
    assert serve(LOOPBACK, taken_port, access_path) == 1
    err = capsys.readouterr().err
    assert err == f"loa broker: MQTT port {LOOPBACK}:{taken_port} is already in use\n"


@pytest.mark.parametrize("content", [None, "{", '{"version": 1, "users": [{}]}'])
def test_serve_reports_a_bad_access_file_in_one_line(
    tmp_path: Path, content: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    access_path = tmp_path / "broker-access.json"
    if content is not None:
        access_path.write_text(content)
    assert serve(LOOPBACK, free_port(), access_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("loa broker: ") and str(access_path) in err
    assert err.count("\n") == 1


def test_broker_process_stops_cleanly_on_sigterm_and_keeps_amqtt_quiet(tmp_path: Path) -> None:
    port = free_port()
    process = AmqttProcess(tmp_path, LOOPBACK, port, ACCESS)
    process.start()
    try:
        broker = RunningBroker("amqtt", LOOPBACK, port)
        for _ in range(3):
            probe = connected(broker, "loa-server", "pw")
            probe.subscribe_ok("loa/v1/device/+/state")
            probe.close()
    finally:
        process.stop()
    assert process.returncode == 0
    log = process.log_path.read_text()
    assert "listening on 127.0.0.1" in log and "received SIGTERM" in log
    assert "Traceback" not in log
    assert " INFO amqtt" not in log and " INFO transitions" not in log, log
    assert "Failed to initialize client session" not in log, log


def test_fan_out_survives_subscriptions_changing_underneath() -> None:
    """amqtt iterates its live subscription dict while awaiting; ours walks a snapshot."""
    from broadcast.fleet.brokers.amqtt_broker import _SnapshotSubscriptions

    subscriptions = _SnapshotSubscriptions({"loa/v1/zone/a/cmd": [("session-1", 1)]})
    seen = []
    for topic_filter, subscribers in subscriptions.items():
        subscriptions[f"{topic_filter}/new"] = []  # a client subscribes mid fan-out
        subscriptions["loa/v1/zone/a/cmd"].clear()  # another unsubscribes
        seen.extend(subscribers)
    assert seen == [("session-1", 1)]


def test_embedded_broker_follows_its_access_file(tmp_path: Path) -> None:
    """A receiver registered while the broker runs can log in without a restart."""
    path = tmp_path / "access.json"
    ACCESS.save(path)
    port = free_port()
    broker = EmbeddedBroker(LOOPBACK, port, ACCESS, path)
    broker.start()
    running = RunningBroker("amqtt", LOOPBACK, port)
    try:
        probe = MqttProbe(running, "loa-new-01", "loa-new-01", "device-pw-123")
        assert probe.connect()[0].is_failure
        probe.close()
        path.write_text("{ half a file", encoding="utf-8")  # a broken file keeps the old users
        time.sleep(1.1)
        connected(running, "loa-server", "pw").close()
        added = device_user("loa-new-01", "device-pw-123", zone_ids=["thon-1"])
        BrokerAccess((*ACCESS.users, added)).save(path)
        deadline = time.monotonic() + 5
        while True:
            probe = MqttProbe(running, "loa-new-01", "loa-new-01", "device-pw-123")
            refused = probe.connect()[0].is_failure
            probe.close()
            if not refused or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert not refused
    finally:
        broker.stop()
