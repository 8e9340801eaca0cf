"""The server's Dispatcher with two brokers (LOA_MQTT_HOSTS): when the one it is on dies, both its
connections move to the other (wire.brokers.Failover, the receivers' rule), commands are
published there and answer-back heard there; a first broker down at start is skipped.

Two mosquitto processes on loopback stand for two nodes of a cluster."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import LOOPBACK, WAIT_S, MqttProbe, RunningBroker, free_ports

from broadcast.fleet.brokers import BrokerAccess, device_user, server_user
from broadcast.fleet.brokers.mosquitto import MosquittoBroker
from broadcast.sending.dispatcher import Dispatcher
from broadcast.store.locks import FileLock
from wire import protocol
from wire.brokers import BrokerAddress

pytestmark = pytest.mark.integration

SERVER, SERVER_PW = "loa-server", "server-secret-1"
DEVICE, DEVICE_PW = "loa-thon-1-01", "device-secret-1"
ZONES = ["thon-1"]
ACCESS = BrokerAccess(users=(server_user(SERVER, SERVER_PW), device_user(DEVICE, DEVICE_PW, ZONES)))
MOVE_S = 15.0
KEY = protocol.generate_private_key()


class Node:
    """One mosquitto that a test can kill (SIGKILL) and see as a RunningBroker."""

    def __init__(self, directory: Path) -> None:
        port, server_port = free_ports(2)
        self.running = RunningBroker("mosquitto", LOOPBACK, port, server_port)
        self.broker = MosquittoBroker(directory, LOOPBACK, port, ACCESS, server_port=server_port)

    @property
    def server_address(self) -> BrokerAddress:
        return BrokerAddress(LOOPBACK, self.running.server_port)

    def kill(self) -> None:
        process = self.broker._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(WAIT_S)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Callable[[], Node]]:
    made: list[Node] = []

    def make() -> Node:
        node = Node(tmp_path / f"node-{len(made)}")
        made.append(node)
        node.broker.start()
        return node

    yield make
    for node in made:
        node.broker.stop()


def wait_until(predicate: Callable[[], object], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout_s:g} s"
        time.sleep(0.05)


def dispatcher(tmp_path: Path, brokers: list[BrokerAddress], events: list) -> Dispatcher:
    sequence = iter(range(1, 1000))
    return Dispatcher(
        LOOPBACK,
        1,
        SERVER,
        SERVER_PW,
        KEY,
        next_seq=lambda _topic: next(sequence),
        publish_lock=FileLock(tmp_path / "publish.lock"),
        on_status=lambda _status: None,
        on_event=events.append,
        brokers=brokers,
        failover_after_s=0.5,
    )


def device_probe(node: Node) -> MqttProbe:
    probe = MqttProbe(node.running, DEVICE, DEVICE, DEVICE_PW).connect_ok()
    return probe.subscribe_ok(protocol.zone_command_topic("thon-1"))


def test_the_dispatcher_publishes_and_listens_via_the_second_broker_after_the_first_dies(
    nodes, tmp_path: Path
) -> None:
    first, second = nodes(), nodes()
    events: list[protocol.DeviceEvent] = []
    link = dispatcher(tmp_path, [first.server_address, second.server_address], events)
    probe = device_probe(second)
    try:
        link.start()
        link.listen()
        assert link.address == str(first.server_address)
        first.kill()
        wait_until(lambda: link.connected and link.address == str(second.server_address), MOVE_S)

        topic = protocol.zone_command_topic("thon-1")
        command = link.send(topic, protocol.StopBody())
        received = probe.expect(topic)
        assert protocol.verify_command(received.payload, KEY.public_key()).id == command.id

        # the answer-back link moved too: an event published on the second broker is heard
        # (QoS 1 to a broker nobody listens on yet is dropped, so it is sent until heard)
        event = protocol.DeviceEvent(
            DEVICE, command.id, None, protocol.EventKind.RECEIVED, time.time()
        )
        deadline = time.monotonic() + MOVE_S
        while not any(e.command_id == command.id for e in events):
            assert time.monotonic() < deadline, "the answer-back link never heard the event"
            probe.publish(protocol.device_event_topic(DEVICE), event.to_json())
            time.sleep(0.5)
    finally:
        probe.close()
        link.stop()


def test_a_first_broker_down_at_start_is_skipped(nodes, tmp_path: Path) -> None:
    second = nodes()
    (down,) = free_ports(1)
    link = dispatcher(tmp_path, [BrokerAddress(LOOPBACK, down), second.server_address], [])
    try:
        link.start(timeout_s=WAIT_S)
        assert link.connected and link.address == str(second.server_address)
    finally:
        link.stop()
