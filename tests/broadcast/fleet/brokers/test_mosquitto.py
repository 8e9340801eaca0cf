"""mosquitto back-end: the rendered config, and one-line errors for a person to act on."""

from __future__ import annotations

import logging
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import LOOPBACK, MqttProbe, RunningBroker, connected, free_port, free_ports

from broadcast.fleet.brokers import BrokerAccess, BrokerError, device_user, server_user
from broadcast.fleet.brokers import mosquitto as mosquitto_module
from broadcast.fleet.brokers.mosquitto import MosquittoBroker, write_config
from wire import protocol

_LOGGER = logging.getLogger(__name__)

ACCESS = BrokerAccess(
    (server_user("loa-server", "server-pw"), device_user("dev-a", "dev-pw", ["xa-1"]))
)


@pytest.fixture
def broker_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "mosquitto"


def test_config_is_locked_down_and_private(tmp_path: Path) -> None:
    conf = write_config(
        tmp_path / "m", ACCESS, LOOPBACK, 18830, persistence=True, server_port=18840
    )
    text = conf.read_text()
    lines = text.splitlines()
    directory = conf.parent.resolve()
    for expected in (
        "per_listener_settings true",
        "set_tcp_nodelay true",
        "persistence true",
        f"persistence_location {directory}/",
    ):
        assert expected in lines, expected
    # the receivers' listener binds each login to its client id; the server's takes only it
    receivers, server = text.split("\nlistener ")[1:]
    assert receivers.splitlines() == [
        f"18830 {LOOPBACK}",
        "allow_anonymous false",
        f"password_file {directory / 'passwd'}",
        f"acl_file {directory / 'acl'}",
        "use_username_as_clientid true",
    ]
    assert server.splitlines() == [
        f"18840 {LOOPBACK}",
        "allow_anonymous false",
        f"password_file {directory / 'passwd-server'}",
        f"acl_file {directory / 'acl'}",
    ]
    for name in ("mosquitto.conf", "passwd", "passwd-server", "acl"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    passwd = (directory / "passwd").read_text().splitlines()
    assert [line.split(":", 1)[0] for line in passwd] == ["dev-a"]
    server_passwd = (directory / "passwd-server").read_text().splitlines()
    assert [line.split(":", 1)[0] for line in server_passwd] == ["loa-server"]
    acl = (directory / "acl").read_text()
    assert "user dev-a\ntopic write loa/v1/device/dev-a/state\n" in acl
    assert "topic read loa/v1/zone/xa-1/cmd\n" in acl
    assert "topic write loa/v1/device/+/cmd\n" in acl
    assert "pattern" not in acl and "topic read #" not in acl
    no_persistence = write_config(
        tmp_path / "n", ACCESS, LOOPBACK, 18830, persistence=False, server_port=18840
    )
    assert "persistence false" in no_persistence.read_text().splitlines()


def test_without_tls_the_server_needs_its_own_listener(tmp_path: Path) -> None:
    with pytest.raises(BrokerError) as caught:
        write_config(tmp_path / "m", ACCESS, LOOPBACK, 18830)
    assert "--server-port" in str(caught.value), caught.value
    with pytest.raises(BrokerError) as caught:
        write_config(tmp_path / "m", ACCESS, LOOPBACK, 18830, server_port=18830)
    assert "cannot share port 18830" in str(caught.value), caught.value
    assert not (tmp_path / "m").exists()


def test_missing_mosquitto_is_one_clear_line(
    broker_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mosquitto_module.shutil, "which", lambda *_a, **_k: None)
    port, server_port = free_ports(2)
    with pytest.raises(BrokerError) as caught:
        MosquittoBroker(broker_dir, LOOPBACK, port, ACCESS, server_port=server_port).start()
    assert str(caught.value) == "mosquitto not found: install the Debian package 'mosquitto'"


def test_taken_port_names_host_and_port(broker_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        port = sock.getsockname()[1]
        broker = MosquittoBroker(broker_dir, LOOPBACK, port, ACCESS, server_port=free_port())
        with pytest.raises(BrokerError) as caught:
            broker.start()
        broker.stop()
    assert str(caught.value) == f"MQTT port {LOOPBACK}:{port} is already in use"


def test_bad_config_reports_mosquittos_own_error_line(
    broker_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_config = mosquitto_module.write_config

    def broken(*args: object, **kwargs: object) -> Path:
        conf = real_write_config(*args, **kwargs)  # type: ignore[arg-type]
        conf.write_text(conf.read_text() + "no_such_option 1\n")
        return conf

    monkeypatch.setattr(mosquitto_module, "write_config", broken)
    port, server_port = free_ports(2)
    broker = MosquittoBroker(broker_dir, LOOPBACK, port, ACCESS, server_port=server_port)
    with pytest.raises(BrokerError) as caught:
        broker.start()
    message = str(caught.value)
    assert "no_such_option" in message and "mosquitto.conf" in message, message
    assert "\n" not in message
    assert not broker.running


def test_queued_commands_and_retained_state_survive_a_mosquitto_restart(broker_dir: Path) -> None:
    port, server_port = free_ports(2)
    running = RunningBroker("mosquitto", LOOPBACK, port, server_port)
    broker = MosquittoBroker(broker_dir, LOOPBACK, port, ACCESS, server_port=server_port)
    broker.start()
    try:
        device = MqttProbe(running, "dev-a", "dev-a", "dev-pw", clean_session=False).connect_ok()
        device.subscribe_ok(protocol.zone_command_topic("xa-1"))
        device.publish(protocol.device_state_topic("dev-a"), b"idle", retain=True)
        device.close()
        server = connected(running.server, "loa-server", "server-pw")
        server.publish(protocol.zone_command_topic("xa-1"), b"play")
        server.close()
        broker.stop()  # SIGTERM: mosquitto writes its persistence file
        broker.start()
        again = MqttProbe(running, "dev-a", "dev-a", "dev-pw", clean_session=False)
        try:
            assert again.connect()[1], "the persistent session did not survive the restart"
            assert again.expect(protocol.zone_command_topic("xa-1")).payload == b"play"
        finally:
            again.close()
        late = connected(running.server, "loa-server", "server-pw")
        try:
            late.subscribe_ok(protocol.STATE_TOPIC_FILTER)
            assert late.expect(protocol.device_state_topic("dev-a")).payload == b"idle"
        finally:
            late.close()
    finally:
        broker.stop()
    broker.stop()  # idempotent


def test_the_broker_fixture_fails_instead_of_skipping_without_mosquitto(
    broker_factory: Callable[[str, BrokerAccess], RunningBroker], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mosquitto_module.shutil, "which", lambda *_a, **_k: None)
    with pytest.raises(pytest.fail.Exception, match="install the Debian package 'mosquitto'"):
        broker_factory("mosquitto", ACCESS)
