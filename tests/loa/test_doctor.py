"""`loa doctor`: each check finds what is wrong on a server or a receiver and says what to do."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psycopg
import pytest
from support import LOOPBACK, free_port

from broadcast.const import Role, ZoneKind
from broadcast.errors import LoaError
from broadcast.fleet import registry
from broadcast.fleet.brokers.embedded import EmbeddedBroker
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from broadcast.store import db
from broadcast.store.models import Device
from devices import doctor as device_doctor
from devices.agent import ReceiverAgent
from devices.players.file_sink import FileSinkPlayer
from loa import doctor
from loa.cli import main as loa
from wire import protocol
from wire.brokers import BrokerAddress
from wire.config import ReceiverConfig
from wire.protocol import DeviceStatus, ReceiverState

CHRONY_OK = """Reference ID    : C0A80101 (ntp.example)
Stratum         : 3
System time     : 0.000213 seconds fast of NTP time
Leap status     : Normal
"""
CHRONY_UNSYNCED = """Reference ID    : 00000000 ()
System time     : 0.000000 seconds fast of NTP time
Leap status     : Not synchronised
"""


def _by_name(checks: list[device_doctor.Check]) -> dict[str, device_doctor.Check]:
    return {check.name: check for check in checks}


def test_a_fresh_data_directory_is_not_ready(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", mqtt_port=free_port())
    checks = _by_name(doctor.server_checks(settings))
    assert checks["data directory"].ok
    database = checks["database"]
    # SQLite: no file yet; PostgreSQL: an empty database, at no migration
    assert not database.ok and ("does not exist" in database.detail or "none" in database.detail)
    assert "loa serve" in database.fix, database
    assert not (tmp_path / "var" / "loa.db").exists()  # the doctor changes nothing
    assert not checks["signing key"].ok and "generates the key" in checks["signing key"].fix
    assert not checks["broker"].ok and "unreachable" in checks["broker"].detail
    assert checks["speech"].ok


def test_a_running_server_passes_and_a_leaked_key_is_flagged(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(data_dir=tmp_path / "var", mqtt_port=port)
    service = BroadcastService(settings, connect_mqtt=False)
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
    service.stop()
    broker = EmbeddedBroker(LOOPBACK, port, access)
    broker.start()
    try:
        checks = _by_name(doctor.server_checks(settings))
        for name in ("data directory", "database", "signing key", "broker", "broker login"):
            assert checks[name].ok, checks[name]
        key = settings.data_dir / "keys" / "server_ed25519.pem"
        key.chmod(0o644)
        leaked = _by_name(doctor.server_checks(settings))["signing key"]
        assert not leaked.ok and leaked.fix == f"chmod 600 {key}"
    finally:
        broker.stop()


def test_receiver_checks(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(data_dir=tmp_path / "var", mqtt_port=port)
    service = BroadcastService(settings, connect_mqtt=False)
    with service.db.session() as session:
        zones.create_zone(session, "thon-1", "Thôn 1", ZoneKind.VILLAGE)
        _device, config_path = registry.register_device(
            session, settings, service.fleet.public_key_text, "loa-thon-1-01", "thon-1"
        )
        access = registry.broker_access(session, service.secrets.mqtt_password)
    service.stop()
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["data_dir"] = str(tmp_path / "pi")
    config_path.write_text(json.dumps(config), encoding="utf-8")

    down = _by_name(device_doctor.receiver_checks(config_path))
    assert down["config"].ok and down["server key"].ok and down["disk"].ok
    assert not down["broker"].ok and "broker login" not in down

    broker = EmbeddedBroker(LOOPBACK, port, access)
    broker.start()
    try:
        ready = _by_name(device_doctor.receiver_checks(config_path))
        assert ready["broker login"].ok, ready["broker login"]
        _running_agent_is_left_its_login(config_path, tmp_path)
        config["mqtt"]["password"] = "not-the-password"
        config["player"] = {"kind": "command", "argv": ["no-such-player-xyz", "{file}"]}
        config_path.write_text(json.dumps(config), encoding="utf-8")
        wrong = _by_name(device_doctor.receiver_checks(config_path))
        assert (
            not wrong["broker login"].ok and "refused loa-thon-1-01" in wrong["broker login"].detail
        )
        assert not wrong["audio"].ok and wrong["audio"].fix == "apt install mpg123"
    finally:
        broker.stop()
    config_path.write_text("{not json", encoding="utf-8")
    [broken] = device_doctor.receiver_checks(config_path)
    assert broken.name == "config" and not broken.ok and str(config_path) in broken.detail


def test_every_broker_of_a_list_is_checked_and_the_login_tried_on_one_that_answers(
    tmp_path: Path,
) -> None:
    down, port = free_port(), free_port()
    brokers = (BrokerAddress(LOOPBACK, down), BrokerAddress(LOOPBACK, port))
    settings = Settings(data_dir=tmp_path / "var", mqtt_hosts=brokers)
    service = BroadcastService(settings, connect_mqtt=False)
    with service.db.session() as session:
        zones.create_zone(session, "thon-1", "Thôn 1", ZoneKind.VILLAGE)
        _device, config_path = registry.register_device(
            session, settings, service.fleet.public_key_text, "loa-thon-1-01", "thon-1"
        )
        access = registry.broker_access(session, service.secrets.mqtt_password)
    service.stop()
    config = json.loads(config_path.read_text(encoding="utf-8"))
    assert config["mqtt"]["hosts"] == [str(address) for address in brokers]
    config["data_dir"] = str(tmp_path / "pi")
    config_path.write_text(json.dumps(config), encoding="utf-8")
    broker = EmbeddedBroker(LOOPBACK, port, access)
    broker.start()
    try:
        for checks in (
            _by_name(doctor.server_checks(settings)),
            _by_name(device_doctor.receiver_checks(config_path)),
        ):
            assert not checks[f"broker {LOOPBACK}:{down}"].ok
            assert checks[f"broker {LOOPBACK}:{port}"].ok
            assert checks["broker login"].ok, checks["broker login"]
    finally:
        broker.stop()


def _running_agent_is_left_its_login(config_path: Path, tmp_path: Path) -> None:
    """With the agent running, the doctor does not log in as the receiver: that would take the
    agent's session over (a login is bound to its client id) and cut it off."""
    config = ReceiverConfig.load(config_path)
    agent = ReceiverAgent(config, FileSinkPlayer(tmp_path / "played", config.device_id))
    agent.start()
    try:
        login = _by_name(device_doctor.receiver_checks(config_path))["broker login"]
        assert login.ok and "not tried" in login.detail and f"pid {os.getpid()}" in login.detail
    finally:
        agent.stop()


def test_clock_check_reads_chrony() -> None:
    assert device_doctor.clock_check(lambda _argv: CHRONY_OK).ok
    unsynced = device_doctor.clock_check(lambda _argv: CHRONY_UNSYNCED)
    assert not unsynced.ok and "not synchronised" in unsynced.detail
    drift = CHRONY_OK.replace("0.000213", "1.250000")
    assert "1.250 s off" in device_doctor.clock_check(lambda _argv: drift).detail


def test_cli_exit_code_and_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = loa(["doctor", "--data", str(tmp_path / "var"), "--mqtt-port", str(free_port())])
    out = capsys.readouterr().out
    assert code == 1
    assert "[FAIL] database:" in out and "→ start the server once" in out
    assert out.strip().endswith("check(s) failed")


def test_receivers_deaf_to_their_zones_are_named_with_what_to_run(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", mqtt_port=free_port())
    service = BroadcastService(settings, connect_mqtt=False)
    try:
        with service.db.session() as session:
            for zone_id in ("thon-1", "thon-2"):
                zones.create_zone(session, zone_id, zone_id, ZoneKind.VILLAGE)
            for device_id in ("loa-thon-1-01", "loa-thon-1-02"):
                registry.register_device(
                    session, settings, service.fleet.public_key_text, device_id, "thon-1"
                )
        for device_id in ("loa-thon-1-01", "loa-thon-1-02"):
            service._on_status(
                DeviceStatus(device_id, ReceiverState.IDLE, "boot", time.time(),
                             extra={"zones": ["thon-1"], "refused_topics": []})
            )  # fmt: skip
        healthy = _by_name(doctor.server_checks(settings))["receivers' zones"]
        assert healthy.ok and "2 receivers hear" in healthy.detail, healthy
        with service.db.session() as session:  # moved in the database, its config not redone
            session.get(Device, "loa-thon-1-02").zone_id = "thon-2"
        service._on_status(
            DeviceStatus("loa-thon-1-02", ReceiverState.IDLE, "boot", time.time() + 1,
                         extra={"zones": ["thon-1"], "refused_topics": []})
        )  # fmt: skip
    finally:
        service.stop()
    deaf = _by_name(doctor.server_checks(settings))["receivers' zones"]
    assert not deaf.ok, deaf
    assert "1 of 2 receivers" in deaf.detail
    assert "loa-thon-1-02 listens to thon-1 but is registered in thon-2" in deaf.detail
    assert "loa device refresh loa-thon-1-02" in deaf.fix and "loa mqtt-config" in deaf.fix


def test_a_data_directory_without_zones_or_admin_says_how_to_set_it_up(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", mqtt_port=free_port())
    service = BroadcastService(settings, connect_mqtt=False)  # migrated, nothing in it
    data = f"--data {settings.data_dir}"
    try:
        empty = _by_name(doctor.server_checks(settings))["set-up"]
        assert not empty.ok and empty.detail.startswith("zones: 0,")
        assert f"`loa zones import FILE.csv {data}`" in empty.fix
        assert f"`loa user add admin --role admin {data}`" in empty.fix
        with service.db.session() as session:
            zones.create_zone(session, "xa-thu", "Xã Thử", ZoneKind.COMMUNE)
            accounts.create_user(session, "admin", "correct horse battery", Role.ADMIN)
        ready = _by_name(doctor.server_checks(settings))["set-up"]
        assert ready.ok and ready.detail == "zones: 1, communes: 1, active admins: 1"
    finally:
        service.stop()


@pytest.mark.integration  # a PostgreSQL server
def test_the_database_check_names_the_postgresql_server_reached_and_refuses_a_read_only_one(
    postgres_server: object,
) -> None:
    """Of a multi-host URL's servers (the first is down), the one that answered is named; one
    that takes no writes (as a standby) fails the check."""
    url = postgres_server.create_database(f"loa_doctor_{os.getpid()}_{time.time_ns() % 10**9}")  # type: ignore[attr-defined]
    database = db.Database(url)
    database.migrate()
    database.dispose()
    port = postgres_server.port  # type: ignore[attr-defined]
    name = url.rsplit("/", 1)[1]
    many = f"postgresql://postgres@{LOOPBACK}:{free_port()},{LOOPBACK}:{port}/{name}"
    check = doctor.database_check(many)
    assert check.ok, check
    assert f"reached {LOOPBACK}:{port}, read-write" in check.detail, check

    with psycopg.connect(postgres_server.dsn("postgres"), autocommit=True) as connection:  # type: ignore[attr-defined]
        connection.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    refused = doctor.database_check(many)  # libpq's read-write check turns it away
    assert not refused.ok and "read-only" in refused.detail, refused
    read_only = doctor.database_check(f"{many}?target_session_attrs=any")
    assert not read_only.ok, read_only
    assert f"reached {LOOPBACK}:{port}, read-only" in read_only.detail, read_only
    assert "target_session_attrs=read-write" in read_only.fix, read_only


def test_a_node_whose_key_file_was_not_copied_is_named_with_what_to_copy(tmp_path: Path) -> None:
    """Two servers on one database sign with one key: the first records it, a second node
    with a key of its own refuses to start and fails the doctor in one line, naming its file
    and what to copy; copying the first node's key file puts it right. Its secrets.json the
    same (without it, it would not resume the answer-back session)."""
    first = Settings(data_dir=tmp_path / "a", mqtt_port=free_port())
    service = BroadcastService(first, connect_mqtt=False)
    url = first.database_url
    service.stop()
    second = Settings(data_dir=tmp_path / "b", database_url=url, mqtt_port=free_port())
    key = second.data_dir / "keys" / "server_ed25519.pem"
    second.ensure_dirs()
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_bytes(protocol.private_key_to_pem(protocol.generate_private_key()))
    key.chmod(0o600)

    found = _by_name(doctor.server_checks(second))["fleet's key"]
    assert not found.ok, found
    assert str(key) in found.detail and "is not the one" in found.detail
    assert "copy keys/server_ed25519.pem" in found.fix and "\n" not in found.detail
    with pytest.raises(LoaError, match=r"copy keys/server_ed25519\.pem"):
        BroadcastService(second, connect_mqtt=False)

    key.write_bytes((first.data_dir / "keys" / "server_ed25519.pem").read_bytes())
    assert _by_name(doctor.server_checks(second))["fleet's key"].ok
    BroadcastService(second, connect_mqtt=False).stop()
    # its secrets.json (made at its first start) is not the first node's: flagged, then copied
    found = _by_name(doctor.server_checks(second))["shared secrets"]
    assert not found.ok and "secrets.json" in found.detail and "copy secrets.json" in found.fix
    secrets_file = second.data_dir / "secrets.json"
    secrets_file.write_bytes((first.data_dir / "secrets.json").read_bytes())
    assert _by_name(doctor.server_checks(second))["shared secrets"].ok
    assert _by_name(doctor.server_checks(first))["shared secrets"].ok


def test_a_rotated_key_is_recorded_and_the_nodes_left_behind_are_flagged(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path / "a", mqtt_port=free_port())
    service = BroadcastService(first, connect_mqtt=False)
    second = Settings(data_dir=tmp_path / "b", database_url=first.database_url)
    second.ensure_dirs()
    (second.data_dir / "keys").mkdir(parents=True, exist_ok=True)
    copied = second.data_dir / "keys" / "server_ed25519.pem"
    copied.write_bytes((first.data_dir / "keys" / "server_ed25519.pem").read_bytes())
    copied.chmod(0o600)
    assert _by_name(doctor.server_checks(second))["fleet's key"].ok
    rotation = service.fleet.rotate_keys()
    service.stop()
    assert _by_name(doctor.server_checks(first))["fleet's key"].ok
    behind = _by_name(doctor.server_checks(second))["fleet's key"]
    assert not behind.ok and rotation.public_key in behind.detail, behind
