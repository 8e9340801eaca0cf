"""nats-server back-end: the rendered config, one-line errors, and a restart on file storage."""

from __future__ import annotations

import logging
import secrets
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from support import LOOPBACK, MqttProbe, RunningBroker, connected, free_port

from broadcast.fleet.brokers import BrokerAccess, BrokerError, BrokerUser, device_user, server_user
from broadcast.fleet.brokers import nats as nats_module
from broadcast.fleet.brokers.nats import NatsBroker, mqtt_to_subject, write_config
from wire import protocol

_LOGGER = logging.getLogger(__name__)

PASSWORDS = {"loa-server": "server-pw", "dev-a": "dev-pw"}
ACCESS = BrokerAccess(
    (server_user("loa-server", "server-pw"), device_user("dev-a", "dev-pw", ["xa-1"]))
)


def test_config_is_private_mqtt_only_and_holds_no_password(tmp_path: Path) -> None:
    conf = write_config(tmp_path / "n", ACCESS, PASSWORDS, LOOPBACK, 18830)
    text = conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert "server-pw" not in text and "dev-pw" not in text
    assert text.count('password: "$2b$') == 2
    assert text.count('allowed_connection_types: ["MQTT"]') == 2
    assert f'host: "{LOOPBACK}"\n  port: 18830' in text
    assert "port: -1" in text  # NATS's own client port: the kernel's choice, on loopback
    device_line = next(line for line in text.splitlines() if '"dev-a"' in line)
    assert (
        'publish: {allow: ["loa.v1.device.dev-a.state", "loa.v1.device.dev-a.event"]}'
        in device_line
    )
    assert (
        'subscribe: {allow: ["loa.v1.device.dev-a.cmd", "loa.v1.device.dev-a.manifest",'
        ' "loa.v1.zone.xa-1.cmd", "$MQTT.sub.>"]}' in device_line
    )


def test_topic_filters_become_nats_subjects() -> None:
    assert mqtt_to_subject("loa/v1/device/+/state") == "loa.v1.device.*.state"
    assert mqtt_to_subject("loa/v1/#") == "loa.v1.>"
    with pytest.raises(BrokerError, match="cannot be a NATS permission"):
        mqtt_to_subject("loa/v1.5/x")


def test_a_password_that_does_not_match_the_access_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BrokerError) as caught:
        write_config(tmp_path / "n", ACCESS, {**PASSWORDS, "dev-a": "other"}, LOOPBACK, 18830)
    assert str(caught.value) == (
        "the password given for broker user 'dev-a' does not match its hash in the access file"
    )
    assert not (tmp_path / "n").exists()


def test_a_user_without_a_password_cannot_log_in(tmp_path: Path) -> None:
    conf = write_config(tmp_path / "n", ACCESS, {"loa-server": "server-pw"}, LOOPBACK, 18830)
    assert '"dev-a"' not in conf.read_text()


def test_a_topic_nats_cannot_express_is_refused(tmp_path: Path) -> None:
    odd = BrokerUser("odd", ACCESS.users[1].password_hash, publish=("a.b/c",))
    with pytest.raises(BrokerError, match=r"'a\.b/c' cannot be a NATS permission"):
        write_config(tmp_path / "n", BrokerAccess((odd,)), {"odd": "dev-pw"}, LOOPBACK, 18830)


def test_missing_nats_server_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nats_module.shutil, "which", lambda *_a, **_k: None)
    with pytest.raises(BrokerError) as caught:
        NatsBroker(tmp_path / "n", LOOPBACK, free_port(), ACCESS, PASSWORDS).start()
    assert str(caught.value) == "nats-server not found: install the Debian package 'nats-server'"


def test_taken_port_names_host_and_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        port = sock.getsockname()[1]
        broker = NatsBroker(tmp_path / "n", LOOPBACK, port, ACCESS, PASSWORDS)
        with pytest.raises(BrokerError) as caught:
            broker.start()
        broker.stop()
    assert str(caught.value) == f"MQTT port {LOOPBACK}:{port} is already in use"


def test_bad_config_reports_nats_servers_own_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_config = nats_module.write_config

    def broken(*args: object, **kwargs: object) -> Path:
        conf = real_write_config(*args, **kwargs)  # type: ignore[arg-type]
        conf.write_text(conf.read_text() + "mqtt { port: nonsense-here }\n")
        return conf

    monkeypatch.setattr(nats_module, "write_config", broken)
    port = free_port()
    broker = NatsBroker(tmp_path / "n", LOOPBACK, port, ACCESS, PASSWORDS)
    with pytest.raises(BrokerError) as caught:
        broker.start()
    message = str(caught.value)
    assert message.startswith(f"nats-server for {LOOPBACK}:{port} exited with code"), message
    assert "nats-server.conf" in message and "\n" not in message, message
    assert not broker.running


def test_queued_commands_and_retained_manifests_survive_a_restart(tmp_path: Path) -> None:
    """JetStream's file storage keeps sessions and retained messages across a restart."""
    port = free_port()
    running = RunningBroker("nats", LOOPBACK, port)
    broker = NatsBroker(tmp_path / "n", LOOPBACK, port, ACCESS, PASSWORDS)
    broker.start()
    try:
        device = MqttProbe(running, "dev-a", "dev-a", "dev-pw", clean_session=False).connect_ok()
        device.subscribe_ok(protocol.zone_command_topic("xa-1"))
        device.close()
        server = connected(running, "loa-server", "server-pw")
        server.publish(protocol.device_manifest_topic("dev-a"), b"manifest", retain=True)
        server.publish(protocol.zone_command_topic("xa-1"), b"play")
        server.close()
        broker.stop()
        broker.start()
        again = MqttProbe(running, "dev-a", "dev-a", "dev-pw", clean_session=False)
        try:
            assert again.connect()[1], "the persistent session did not survive the restart"
            assert again.expect(protocol.zone_command_topic("xa-1")).payload == b"play"
            again.subscribe_ok(protocol.device_manifest_topic("dev-a"))
            manifest = again.expect(protocol.device_manifest_topic("dev-a"))
            assert (manifest.payload, manifest.retain) == (b"manifest", True)
        finally:
            again.close()
    finally:
        broker.stop()
    broker.stop()  # idempotent


def test_the_broker_fixture_needs_the_passwords_for_nats(
    broker_factory: Callable[..., RunningBroker],
) -> None:
    with pytest.raises(ValueError, match="needs the users' passwords"):
        broker_factory("nats", ACCESS)


def test_unguessable_client_ids_keep_a_stolen_login_away_from_other_sessions(
    tmp_path: Path,
) -> None:
    """The fallback for nats's unbound client ids (docs/deployment.md): each receiver and the
    server's answer-back session connect with an id holding a secret token. A stolen receiver's
    login, trying the ids it can guess, disturbs neither them nor their queued commands."""
    access = BrokerAccess((*ACCESS.users, device_user("dev-b", "thief-pw", ["xa-2"])))
    port = free_port()
    running = RunningBroker("nats", LOOPBACK, port)
    broker = NatsBroker(tmp_path / "n", LOOPBACK, port, access, {**PASSWORDS, "dev-b": "thief-pw"})
    broker.start()
    probes: list[MqttProbe] = []
    try:
        device_id = f"dev-a-{secrets.token_hex(16)}"
        server_id = f"loa-server-{secrets.token_hex(16)}"
        owner = MqttProbe(running, device_id, "dev-a", "dev-pw", clean_session=False)
        probes.append(owner.connect_ok())
        owner.subscribe_ok(protocol.device_command_topic("dev-a"))
        answer_back = connected(running, "loa-server", "server-pw", server_id, clean_session=False)
        probes.append(answer_back)
        answer_back.subscribe_ok(protocol.STATE_TOPIC_FILTER)
        guesses = ("dev-a", "loa-server", "server", device_id[:-1], server_id[:-1])

        def try_guesses() -> None:
            for guess in guesses:
                for clean in (True, False):
                    thief = MqttProbe(running, guess, "dev-b", "thief-pw", clean_session=clean)
                    probes.append(thief)
                    thief.connect()
                    thief.close()

        try_guesses()
        assert owner.client.is_connected() and answer_back.client.is_connected()
        publisher_id = f"loa-server-{secrets.token_hex(8)}"
        publisher = connected(running, "loa-server", "server-pw", publisher_id)
        probes.append(publisher)
        live = secrets.token_hex(8).encode()
        publisher.publish(protocol.device_command_topic("dev-a"), live)
        assert owner.expect(protocol.device_command_topic("dev-a")).payload == live
        owner.publish(protocol.device_state_topic("dev-a"), b"idle")
        assert answer_back.expect(protocol.device_state_topic("dev-a")).payload == b"idle"
        owner.close()
        queued = secrets.token_hex(8).encode()
        publisher.publish(protocol.device_command_topic("dev-a"), queued)
        try_guesses()
        again = MqttProbe(running, device_id, "dev-a", "dev-pw", clean_session=False)
        probes.append(again)
        assert again.connect()[1], "the receiver's session was lost"
        assert again.expect(protocol.device_command_topic("dev-a")).payload == queued
    finally:
        for probe in probes:
            probe.close()
        broker.stop()


def test_receivers_cannot_subscribe_to_nats_own_delivery_subjects(tmp_path: Path) -> None:
    """Every user may subscribe to $MQTT.sub.> (nats delivers QoS 1 through it, with the
    client's permissions), yet no MQTT client can: another receiver's commands stay its own."""
    access = BrokerAccess((*ACCESS.users, device_user("dev-b", "spy-pw", ["xa-2"])))
    port = free_port()
    running = RunningBroker("nats", LOOPBACK, port)
    broker = NatsBroker(tmp_path / "n", LOOPBACK, port, access, {**PASSWORDS, "dev-b": "spy-pw"})
    broker.start()
    probes: list[MqttProbe] = []
    try:
        spy = connected(running, "dev-b", "spy-pw", "dev-b")
        probes.append(spy)
        for topic in ("$MQTT/sub/#", "$MQTT/sub/+", "$MQTT/#", "#"):
            assert spy.subscribe(topic, qos=0).is_failure, topic
        owner = connected(running, "dev-a", "dev-pw", "dev-a")
        probes.append(owner)
        owner.subscribe_ok(protocol.device_command_topic("dev-a"))
        server = connected(running, "loa-server", "server-pw", "loa-server-test")
        probes.append(server)
        server.publish(protocol.device_command_topic("dev-a"), b"for a")
        assert owner.expect(protocol.device_command_topic("dev-a")).payload == b"for a"
        assert spy.drain() == []
    finally:
        for probe in probes:
            probe.close()
        broker.stop()
