"""The broker contract Loa relies on, proven on the embedded amqtt broker, mosquitto, and
nats-server (one node of the clustered candidate, issue 14). nats-server cannot bind a client id
to a login, so the client-id takeover tests there prove what Loa does instead: secret client ids
(`<name>-<token>`) that no other login can guess.

Real brokers on loopback, real paho clients. Negative checks ("nothing arrives") use a positive
control: an allowed message sent right after the forbidden one must arrive, and the forbidden one
must not have arrived before it (plus a short quiet period).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import pytest
from support import BROKER_KINDS, WAIT_S, MqttProbe, RunningBroker, connected

from broadcast.fleet.brokers import (
    BrokerAccess,
    device_user,
    new_client_token,
    secret_client_id,
    server_user,
)
from broadcast.fleet.brokers.nats import ACK_WAIT_S
from wire import protocol

_LOGGER = logging.getLogger(__name__)

pytestmark = pytest.mark.integration

SERVER, SERVER_PW = "loa-server", "server-secret-1"
DEV_A, DEV_A_PW = "dev-a", "dev-a-secret"
DEV_B, DEV_B_PW = "dev-b", "dev-b-secret"
ZONE_1, ZONE_2 = "zone-1", "zone-2"
# the secret client ids Loa writes (a receiver's config, the server's data directory): what a
# stolen receiver's login cannot guess on an engine that does not bind ids to logins (nats)
DEV_A_TOKEN, DEV_B_TOKEN, SERVER_TOKEN = (new_client_token() for _ in range(3))
DEV_A_ID = secret_client_id(DEV_A, DEV_A_TOKEN)
SERVER_ID = secret_client_id(SERVER, SERVER_TOKEN)
# engines that bind a client id to its login: there even the holder's own id, known, is refused
BINDS_CLIENT_IDS = ("amqtt", "mosquitto")

PASSWORDS = {SERVER: SERVER_PW, DEV_A: DEV_A_PW, DEV_B: DEV_B_PW}
ACCESS = BrokerAccess(
    (
        server_user(SERVER, SERVER_PW),
        device_user(DEV_A, DEV_A_PW, [ZONE_1], client_token=DEV_A_TOKEN),
        device_user(DEV_B, DEV_B_PW, [ZONE_2], client_token=DEV_B_TOKEN),
    )
)


@pytest.fixture(params=BROKER_KINDS)
def broker_kind(request: pytest.FixtureRequest) -> str:
    """Every broker kind, the clustered candidate included (tests/conftest.py has the others)."""
    return str(request.param)


@pytest.fixture
def broker(broker_kind: str, broker_factory: Callable[..., RunningBroker]) -> RunningBroker:
    return broker_factory(broker_kind, ACCESS, PASSWORDS)


@pytest.fixture
def probes() -> list[MqttProbe]:
    made: list[MqttProbe] = []
    yield made
    for probe in made:
        probe.close()


def _payload() -> bytes:
    return uuid.uuid4().hex.encode()


def _stolen_ids(broker: RunningBroker, *held: str) -> list[str]:
    """The client ids a stolen receiver's login tries in order to close `held` clients: the ones
    it can guess (names, another token), and on engines that bind ids to logins the held ones
    themselves. nats-server lets any login take any id, so there only the secret protects it:
    the one login that knows a receiver's token is that receiver's own (both are in its config),
    and the server's token never leaves its data directory."""
    guesses = [DEV_A, SERVER, secret_client_id(DEV_A, new_client_token())]
    guesses += [secret_client_id(SERVER, new_client_token()), f"{SERVER}-{uuid.uuid4().hex[:12]}"]
    guesses += [client_id[:-1] for client_id in held]
    return guesses + list(held) if broker.kind in BINDS_CLIENT_IDS else guesses


def test_wrong_password_and_anonymous_are_refused(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    for username, password in ((DEV_A, "wrong"), (None, None), ("nobody", "x"), (DEV_A, "")):
        probe = MqttProbe(broker, f"c-{uuid.uuid4().hex[:8]}", username, password)
        probes.append(probe)
        code, _ = probe.connect()
        assert code.is_failure, f"{username!r}/{password!r} was let in on {broker.kind}"


def test_device_receives_its_own_and_its_zone_commands(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    device = connected(broker, DEV_A, DEV_A_PW, DEV_A)
    probes.append(device)
    device.subscribe_ok(protocol.device_command_topic(DEV_A))
    device.subscribe_ok(protocol.zone_command_topic(ZONE_1))
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    one, two = _payload(), _payload()
    server.publish(protocol.device_command_topic(DEV_A), one)
    server.publish(protocol.zone_command_topic(ZONE_1), two)
    assert device.expect(protocol.device_command_topic(DEV_A)).payload == one
    assert device.expect(protocol.zone_command_topic(ZONE_1)).payload == two


def test_device_reads_its_own_retained_manifest_only(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    mine, theirs = _payload(), _payload()
    server.publish(protocol.device_manifest_topic(DEV_A), mine, retain=True)
    server.publish(protocol.device_manifest_topic(DEV_B), theirs, retain=True)
    device = connected(broker, DEV_A, DEV_A_PW, DEV_A)  # subscribes after the publish
    probes.append(device)
    device.subscribe(protocol.device_manifest_topic(DEV_B))
    device.subscribe_ok(protocol.device_manifest_topic(DEV_A))
    message = device.expect(protocol.device_manifest_topic(DEV_A))
    assert (message.payload, message.retain) == (mine, True)
    device.publish(protocol.device_manifest_topic(DEV_A), b"forged manifest", retain=True)
    assert [m.payload for m in device.seen + device.drain()] == []
    device.close()  # a client id is bound to its login: the next connection is the device again
    late = connected(broker, DEV_A, DEV_A_PW, DEV_A)
    probes.append(late)
    late.subscribe_ok(protocol.device_manifest_topic(DEV_A))
    assert late.expect(protocol.device_manifest_topic(DEV_A)).payload == mine


def test_device_cannot_receive_other_devices_or_zones_commands(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    device = connected(broker, DEV_A, DEV_A_PW, DEV_A)
    probes.append(device)
    device.subscribe_ok(protocol.device_command_topic(DEV_A))
    codes = {
        topic: device.subscribe(topic)
        for topic in (
            protocol.device_command_topic(DEV_B),
            protocol.zone_command_topic(ZONE_2),
            "loa/v1/device/+/cmd",
            "loa/v1/zone/+/cmd",
            "loa/v1/#",
            "#",
        )
    }
    if broker.kind == "amqtt":  # refuses the SUBSCRIBE; mosquitto 2.0 grants it, delivers nothing
        assert all(code.is_failure for code in codes.values()), codes
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    server.publish(protocol.device_command_topic(DEV_B), b"for b")
    server.publish(protocol.zone_command_topic(ZONE_2), b"for zone 2")
    control = _payload()
    server.publish(protocol.device_command_topic(DEV_A), control)
    assert device.expect(protocol.device_command_topic(DEV_A)).payload == control
    assert device.seen == [], "device A received a foreign command before its own"
    assert device.drain() == []


def test_device_cannot_publish_commands_or_speak_for_another_device(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    server.subscribe_ok(protocol.STATE_TOPIC_FILTER)
    server.subscribe_ok(protocol.EVENT_TOPIC_FILTER)
    listener_b = connected(broker, DEV_B, DEV_B_PW, DEV_B)
    probes.append(listener_b)
    listener_b.subscribe_ok(protocol.device_command_topic(DEV_B))
    listener_b.subscribe_ok(protocol.zone_command_topic(ZONE_2))
    device = connected(broker, DEV_A, DEV_A_PW, DEV_A)
    probes.append(device)
    for topic in (
        protocol.device_command_topic(DEV_B),
        protocol.zone_command_topic(ZONE_2),
        protocol.device_state_topic(DEV_B),
        protocol.device_event_topic(DEV_B),
    ):
        device.publish(topic, b"forged")
    control = _payload()
    device.publish(protocol.device_state_topic(DEV_A), control)
    assert server.expect(protocol.device_state_topic(DEV_A)).payload == control
    assert server.seen == [], "the server received a forged message"
    assert server.drain() == []
    assert listener_b.drain(0) == []


def test_server_receives_device_state_and_events(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    server.subscribe_ok(protocol.STATE_TOPIC_FILTER)
    server.subscribe_ok(protocol.EVENT_TOPIC_FILTER)
    device = connected(broker, DEV_A, DEV_A_PW, DEV_A)
    probes.append(device)
    state, event = _payload(), _payload()
    device.publish(protocol.device_state_topic(DEV_A), state, retain=True)
    device.publish(protocol.device_event_topic(DEV_A), event)
    assert server.expect(protocol.device_state_topic(DEV_A)).payload == state
    assert server.expect(protocol.device_event_topic(DEV_A)).payload == event


def test_commands_queue_for_an_offline_device(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    device = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW, clean_session=False).connect_ok()
    device.subscribe_ok(protocol.device_command_topic(DEV_A))
    device.subscribe_ok(protocol.zone_command_topic(ZONE_1))
    device.close()
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    one, two = _payload(), _payload()
    server.publish(protocol.device_command_topic(DEV_A), one)
    server.publish(protocol.zone_command_topic(ZONE_1), two)
    again = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW, clean_session=False)
    probes.append(again)
    code, session_present = again.connect()
    assert not code.is_failure and session_present
    # MQTT orders messages per topic only: nats (a JetStream consumer per subscription) may
    # deliver the zone's command first
    first = again.expect(protocol.device_command_topic(DEV_A))
    early = [m for m in again.seen if m.topic == protocol.zone_command_topic(ZONE_1)]
    second = early[0] if early else again.expect(protocol.zone_command_topic(ZONE_1))
    assert (first.payload, first.qos) == (one, 1)
    assert (second.payload, second.qos) == (two, 1)
    assert not first.retain and not second.retain, "queued commands must not look retained"


def test_retained_state_reaches_a_late_subscriber(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    device = connected(broker, DEV_A, DEV_A_PW, DEV_A)
    state = _payload()
    device.publish(protocol.device_state_topic(DEV_A), state, retain=True)
    device.close()
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    server.subscribe_ok(protocol.STATE_TOPIC_FILTER)
    message = server.expect(protocol.device_state_topic(DEV_A))
    assert message.payload == state and message.retain


def test_retained_state_does_not_leak_to_other_devices(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    server.subscribe_ok(protocol.STATE_TOPIC_FILTER)
    device_b = connected(broker, DEV_B, DEV_B_PW, DEV_B)
    probes.append(device_b)
    device_b.publish(protocol.device_state_topic(DEV_B), b"b state", retain=True)
    server.expect(protocol.device_state_topic(DEV_B))
    for clean in (True, False):
        device_a = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW, clean_session=clean).connect_ok()
        probes.append(device_a)
        device_a.subscribe(protocol.device_state_topic(DEV_B))
        device_a.subscribe_ok(protocol.device_command_topic(DEV_A))
        assert device_a.drain() == [], f"device A got another device's state (clean={clean})"
        device_a.close()


def test_last_will_reports_a_vanished_device(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    server.subscribe_ok(protocol.STATE_TOPIC_FILTER)
    device = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW)
    device.will(protocol.device_state_topic(DEV_A), b"offline").connect_ok()
    device.drop()
    will = server.expect(protocol.device_state_topic(DEV_A))
    assert will.payload == b"offline"


def test_silent_device_is_dropped_after_its_keepalive(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    server.subscribe_ok(protocol.STATE_TOPIC_FILTER)
    device = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW, keepalive=1)
    device.will(protocol.device_state_topic(DEV_A), b"offline").connect_ok()
    device.freeze()  # no more PINGREQ, but the TCP connection stays open
    try:
        will = server.expect(protocol.device_state_topic(DEV_A), timeout_s=10)
        assert will.payload == b"offline"
    finally:
        device.drop()


def test_a_last_will_on_another_devices_topic_is_never_sent(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    server.subscribe_ok(protocol.STATE_TOPIC_FILTER)
    device = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW)
    device.will(protocol.device_state_topic(DEV_B), b"offline").connect_ok()
    device.drop()  # both brokers accept the login and drop the forbidden will
    control = connected(broker, DEV_A, DEV_A_PW, DEV_A)
    probes.append(control)
    control.publish(protocol.device_state_topic(DEV_A), b"control")
    assert server.expect(protocol.device_state_topic(DEV_A)).payload == b"control"
    assert server.seen == [] and server.drain(1.0) == [], "a forged last will was published"


def test_a_failed_login_cannot_take_over_a_session(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    device = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW, clean_session=False).connect_ok()
    probes.append(device)
    device.subscribe_ok(protocol.device_command_topic(DEV_A))
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    for clean in (True, False):  # an impostor using A's client id while A is online
        impostor = MqttProbe(broker, DEV_A, DEV_A, "wrong", clean_session=clean)
        probes.append(impostor)
        assert impostor.connect()[0].is_failure
        impostor.close()
    live = _payload()
    server.publish(protocol.device_command_topic(DEV_A), live)
    assert device.expect(protocol.device_command_topic(DEV_A)).payload == live
    device.close()
    for clean in (True, False):  # and while A is offline
        impostor = MqttProbe(broker, DEV_A, DEV_A, "wrong", clean_session=clean)
        probes.append(impostor)
        assert impostor.connect()[0].is_failure
        impostor.close()
    queued = _payload()
    server.publish(protocol.device_command_topic(DEV_A), queued)
    again = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW, clean_session=False)
    probes.append(again)
    assert again.connect()[1], "the persistent session was lost"
    assert again.expect(protocol.device_command_topic(DEV_A)).payload == queued


def test_a_reconnecting_device_takes_over_its_session(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    # nats re-sends a QoS 1 message left unacknowledged on a dead connection once its
    # JetStream ack wait has passed (ACK_WAIT_S), not at once on the new connection
    redelivery_s = WAIT_S + (ACK_WAIT_S if broker.kind == "nats" else 0)
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    server.subscribe_ok(protocol.STATE_TOPIC_FILTER)
    old = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW, clean_session=False)
    old.will(protocol.device_state_topic(DEV_A), b"offline").connect_ok()
    old.subscribe_ok(protocol.device_command_topic(DEV_A))
    old.freeze()  # the old connection is half-open: the broker has not noticed yet
    in_flight = _payload()
    server.publish(protocol.device_command_topic(DEV_A), in_flight)
    new = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW, clean_session=False).connect_ok()
    probes.append(new)
    # the command sent into the dead connection is re-sent on the new one
    topic = protocol.device_command_topic(DEV_A)
    assert new.expect(topic, timeout_s=redelivery_s).payload == in_flight
    for _ in range(3):
        payload = _payload()
        server.publish(protocol.device_command_topic(DEV_A), payload)
        assert new.expect(protocol.device_command_topic(DEV_A)).payload == payload
    old.drop()
    assert server.drain() == [], "a taken-over connection must not publish its last will"


def test_another_device_using_my_client_id_cannot_read_my_commands(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    owner = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW, clean_session=False).connect_ok()
    owner.subscribe_ok(protocol.device_command_topic(DEV_A))
    owner.close()
    server = connected(broker.server, SERVER, SERVER_PW, "server")
    probes.append(server)
    server.publish(protocol.device_command_topic(DEV_A), b"queued for a")
    thief = MqttProbe(broker, DEV_A, DEV_B, DEV_B_PW, clean_session=False)
    probes.append(thief)
    refused = thief.connect()[0].is_failure  # amqtt refuses; mosquitto makes it dev-b's own
    server.publish(protocol.device_command_topic(DEV_A), b"live for a")
    if not refused:
        control = _payload()
        thief.subscribe_ok(protocol.zone_command_topic(ZONE_2))
        server.publish(protocol.zone_command_topic(ZONE_2), control)
        assert thief.expect(protocol.zone_command_topic(ZONE_2)).payload == control
    leaked = [m for m in thief.seen + thief.drain() if m.topic.startswith("loa/v1/device/")]
    assert leaked == [], "device B read device A's commands through A's client id"
    again = MqttProbe(broker, DEV_A, DEV_A, DEV_A_PW, clean_session=False)
    probes.append(again)
    assert again.connect()[1], "device B's attempt wiped device A's persistent session"
    topic = protocol.device_command_topic(DEV_A)
    assert [again.expect(topic).payload for _ in range(2)] == [b"queued for a", b"live for a"]


def test_another_login_with_my_client_id_cannot_wipe_my_queued_commands(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    """A clean session under a client id deletes that id's persistent session: a stolen
    receiver's login must not be able to do it to another receiver's queued commands, with any
    id it can guess (and on amqtt/mosquitto, not even with the receiver's secret id)."""
    topic = protocol.device_command_topic(DEV_A)
    owner = MqttProbe(broker, DEV_A_ID, DEV_A, DEV_A_PW, clean_session=False).connect_ok()
    owner.subscribe_ok(topic)
    owner.close()
    server = connected(broker.server, SERVER, SERVER_PW, SERVER_ID)
    probes.append(server)
    queued = _payload()
    server.publish(topic, queued)
    for client_id in _stolen_ids(broker, DEV_A_ID):
        thief = MqttProbe(broker, client_id, DEV_B, DEV_B_PW, clean_session=True)
        probes.append(thief)
        thief.connect()  # amqtt refuses it; mosquitto makes it dev-b's own session
        thief.close()
    again = MqttProbe(broker, DEV_A_ID, DEV_A, DEV_A_PW, clean_session=False)
    probes.append(again)
    assert again.connect()[1], "another login's clean session wiped device A's session"
    assert again.expect(topic).payload == queued


def _kicked(probe: MqttProbe) -> bool:
    """Whether the broker closed this probe's connection (it never reconnects by itself)."""
    return not probe.client.is_connected()


def test_a_login_cannot_take_over_another_clients_id(
    broker: RunningBroker, probes: list[MqttProbe]
) -> None:
    """A stolen receiver's login, connecting with a receiver's or the server's client id, is
    refused ("identifier rejected", amqtt) or bound to its own id (mosquitto), even with the
    holder's secret id; on nats it cannot guess the secret ids Loa's clients use. The holder of
    that id stays connected either way, and so does its session."""
    owner = MqttProbe(broker, DEV_A_ID, DEV_A, DEV_A_PW, clean_session=False).connect_ok()
    probes.append(owner)
    owner.subscribe_ok(protocol.device_command_topic(DEV_A))
    answer_back = connected(broker.server, SERVER, SERVER_PW, SERVER_ID, clean_session=False)
    probes.append(answer_back)
    answer_back.subscribe_ok(protocol.STATE_TOPIC_FILTER)
    publisher_id = f"{SERVER_ID}-{uuid.uuid4().hex[:12]}"
    publisher = connected(broker.server, SERVER, SERVER_PW, publisher_id)
    probes.append(publisher)
    attempts = [(broker, client_id) for client_id in _stolen_ids(broker, DEV_A_ID, SERVER_ID)]
    attempts += [(broker, publisher_id), (broker.server, SERVER_ID), (broker.server, SERVER)]
    if broker.kind not in BINDS_CLIENT_IDS:  # the holders' own secret ids: see _stolen_ids
        attempts = [(where, cid) for where, cid in attempts if cid not in (publisher_id, SERVER_ID)]
    for where, client_id in attempts:
        for clean in (True, False):
            thief = MqttProbe(where, client_id, DEV_B, DEV_B_PW, clean_session=clean)
            probes.append(thief)
            code, _present = thief.connect()
            if broker.kind == "amqtt":
                assert code.is_failure and "identifier" in str(code).lower(), (
                    f"{DEV_B} connected as {client_id!r}: {code}"
                )
            thief.close()
            assert not any(map(_kicked, (owner, answer_back, publisher))), (
                f"{DEV_B} connecting as {client_id!r} (clean {clean}) closed its holder"
            )
    for probe in (owner, answer_back, publisher):
        assert not _kicked(probe), probe.client_id
    live = _payload()
    publisher.publish(protocol.device_command_topic(DEV_A), live)
    assert owner.expect(protocol.device_command_topic(DEV_A)).payload == live
    state = _payload()
    owner.publish(protocol.device_state_topic(DEV_A), state)
    assert answer_back.expect(protocol.device_state_topic(DEV_A)).payload == state
