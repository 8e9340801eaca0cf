"""The `loa` command line: mistakes get one clear line naming what to fix, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import LOOPBACK, REPO_ROOT, free_port, free_ports, self_signed_ca_pem


def loa(*args: str, stdin: str = "", timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "loa.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def _one_clear_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("loa: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_serve_with_broker_unreachable(tmp_path: Path) -> None:
    web_port, mqtt_port = free_ports(2)
    # a data directory that can serve someone (an empty one says how to set it up instead)
    data = str(tmp_path)
    for step in (
        ("zones", "add", "--kind", "commune", "--name", "Xã Thử", "--data", data),
        ("user", "add", "admin", "--password", "mat-khau-dai-du", "--data", data),
    ):
        assert loa(*step).returncode == 0, step
    result = loa(
        "serve", "--data", str(tmp_path), "--port", str(web_port), "--mqtt-port", str(mqtt_port)
    )
    _one_clear_line(result, f"127.0.0.1:{mqtt_port}", "unreachable")


def test_demo_with_web_port_taken(tmp_path: Path, taken_port: int) -> None:
    result = loa(
        "demo", "--data", str(tmp_path), "--port", str(taken_port), "--mqtt-port", str(free_port())
    )
    _one_clear_line(result, f"127.0.0.1:{taken_port}", "in use")


def test_demo_with_mqtt_port_taken(tmp_path: Path, taken_port: int) -> None:
    result = loa(
        "demo", "--data", str(tmp_path), "--port", str(free_port()), "--mqtt-port", str(taken_port)
    )
    _one_clear_line(result, f"127.0.0.1:{taken_port}", "in use")


def test_receiver_with_missing_config(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = loa("receiver", "--config", str(missing))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert str(missing) in result.stderr


def test_receiver_with_bad_config_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text('{"device_id": "loa-1", "zones": []}')
    result = loa("receiver", "--config", str(config))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert str(config) in result.stderr and "mqtt" in result.stderr


def test_token_for_unknown_user(tmp_path: Path) -> None:
    _one_clear_line(loa("token", "create", "nobody", "--data", str(tmp_path)), "nobody")


def test_user_add_and_token(tmp_path: Path) -> None:
    short = loa("user", "add", "chi", "--password", "short", "--data", str(tmp_path))
    _one_clear_line(short, "password")
    added = loa(
        "user",
        "add",
        "chi",
        "--role",
        "officer",
        "--password",
        "mat-khau-dai-du",
        "--data",
        str(tmp_path),
    )
    assert added.returncode == 0, added.stderr
    token = loa("token", "create", "chi", "--data", str(tmp_path))
    assert token.returncode == 0
    assert token.stdout.strip().startswith("loa_")


def test_user_add_binds_any_role_to_its_zone(tmp_path: Path) -> None:
    from service_support import make_service, seed_two_communes
    from sqlalchemy import select

    from broadcast.store.models import User

    data = tmp_path / "data"
    service = make_service(data)
    seed_two_communes(service)
    service.stop()

    def add(name: str, role: str, *zone: str) -> subprocess.CompletedProcess[str]:
        return loa(
            "user", "add", name, "--role", role, *zone, "--password", "mat-khau-dai-du",
            "--data", str(data),
        )  # fmt: skip

    for name, role, zone in (
        ("xa-officer", "officer", "99001"),  # by administrative code
        ("tinh-bien-tap", "province_editor", "99"),
        ("thon-head", "village_head", "thon-an-2"),  # by id
        ("tinh-admin-2", "admin", "tinh-thu"),
    ):
        added = add(name, role, "--zone", zone)
        assert added.returncode == 0, added.stderr
        assert name in added.stdout and "in " in added.stdout
    _one_clear_line(add("x", "officer", "--zone", "nowhere"), "--zone", "nowhere")
    _one_clear_line(add("x", "village_head", "--zone", "xa-an"), "--zone", "village_head")
    _one_clear_line(add("x", "officer"), "--zone", "a commune")  # a province exists
    _one_clear_line(add("x", "province_editor", "--zone", "99001"), "--zone", "province")
    service = make_service(data)
    with service.db.session() as session:
        bound = {name: zone for name, zone in session.execute(select(User.username, User.zone_id))}
    service.stop()
    assert (bound["xa-officer"], bound["tinh-bien-tap"], bound["thon-head"]) == (
        "xa-an",
        "tinh-thu",
        "thon-an-2",
    )
    assert "x" not in bound


def test_user_add_help_names_every_role_and_its_zone() -> None:
    from broadcast.const import Role
    from broadcast.people import permissions
    from loa.cli import _ROLE_ZONES_TEXT

    assert set(_ROLE_ZONES_TEXT) == {role.value for role in Role}
    for role in Role:  # the words follow the table
        text = _ROLE_ZONES_TEXT[role.value]
        for kind in permissions.zone_kinds(role):
            assert (kind or "none") in text, role
    helped = loa("user", "add", "--help")
    assert helped.returncode == 0
    flat = " ".join(helped.stdout.split())
    assert "province_editor" in flat and "administrative code" in flat


def test_normalize_lines_keeps_one_line_per_line() -> None:
    result = loa("normalize", "--lines", stdin="UBND xã\n\nngày 21/3/2023\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")[:-1]
    assert len(lines) == 3
    assert "Ủy ban nhân dân" in lines[0] and lines[1] == ""
    assert "hai mươi mốt tháng ba" in lines[2]


def _commune(data: Path) -> None:
    from service_support import make_service, seed_commune

    service = make_service(data)
    seed_commune(service)
    service.stop()


def test_device_add_writes_the_receiver_config(tmp_path: Path) -> None:
    from wire.config import ReceiverConfig

    data = tmp_path / "data"
    _commune(data)
    added = loa(
        "device", "add", "loa-a-01", "--zone", "thon-a", "--data", str(data),
        "--mqtt-host", "10.0.0.5", "--mqtt-port", "8883", "--name", "Cụm loa chợ",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    path = Path(added.stdout.strip())
    assert path == (data / "devices" / "loa-a-01.json").resolve()
    config = ReceiverConfig.load(path)
    assert config.device_id == "loa-a-01" and config.zones == ["thon-a", "xa-test"]
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.username) == (
        "10.0.0.5",
        8883,
        "loa-a-01",
    )
    assert len(config.mqtt.password) >= 24 and config.server_public_key
    assert path.stat().st_mode & 0o077 == 0  # it holds the device's password
    _one_clear_line(loa("device", "add", "loa-a-01", "--zone", "thon-a", "--data", str(data)),
                    "“loa-a-01” đã có")  # fmt: skip
    _one_clear_line(loa("device", "add", "loa-x-01", "--zone", "thon-x", "--data", str(data)),
                    "thon-x")  # fmt: skip
    _one_clear_line(loa("device", "add", "Loa X", "--zone", "thon-a", "--data", str(data)),
                    "chỉ gồm chữ thường không dấu")  # fmt: skip
    for server_id in ("loa-server", "loa-server-1a2b3c4d5e6f"):  # the server's client ids
        _one_clear_line(loa("device", "add", server_id, "--zone", "thon-a", "--data", str(data)),
                        "dành riêng cho máy chủ")  # fmt: skip


def test_device_refresh_turns_tls_on_in_configs_and_keeps_passwords(tmp_path: Path) -> None:
    """Receivers registered on plain MQTT get configs for the TLS broker; what the installer
    changed in a config (here its heartbeat) stays, and so does the password."""
    import json

    from wire.config import ReceiverConfig

    data = tmp_path / "data"
    _commune(data)
    for device_id in ("loa-a-01", "loa-a-02"):
        added = loa("device", "add", device_id, "--zone", "thon-a", "--data", str(data))
        assert added.returncode == 0, added.stderr
    first = data / "devices" / "loa-a-01.json"
    edited = json.loads(first.read_text())
    edited["heartbeat_s"] = 10.0
    first.write_text(json.dumps(edited))
    before = ReceiverConfig.load(first)
    (data / "devices" / "loa-a-02.json").unlink()  # lost: it gets a new password
    ca = self_signed_ca_pem()
    (tmp_path / "ca.pem").write_text(ca)

    refreshed = loa(
        "device", "refresh", "--data", str(data),
        "--mqtt-host", "broker.xa.example", "--mqtt-port", "8883",
        "--mqtt-tls-ca", str(tmp_path / "ca.pem"),
    )  # fmt: skip
    assert refreshed.returncode == 0, refreshed.stderr
    assert len(refreshed.stdout.split()) == 2
    after = ReceiverConfig.load(first)
    assert (after.mqtt.host, after.mqtt.port) == ("broker.xa.example", 8883)
    assert after.mqtt.tls is not None and after.mqtt.tls.ca_pem == ca
    assert after.mqtt.password == before.mqtt.password and after.heartbeat_s == 10.0
    assert after.mqtt.client_id == before.mqtt.client_id  # its secret client id stays
    assert before.mqtt.client_id.startswith("loa-a-01-")
    assert after.zones == before.zones and after.player == before.player
    second = ReceiverConfig.load(data / "devices" / "loa-a-02.json")
    assert second.mqtt.tls is not None and len(second.mqtt.password) >= 24
    assert (
        "new passwords for loa-a-02" in refreshed.stderr and "loa mqtt-config" in refreshed.stderr
    )

    one = loa("device", "refresh", "loa-a-01", "--data", str(data))  # back to plain MQTT
    assert one.returncode == 0 and one.stdout.split() == [str(first.resolve())], one.stderr
    assert ReceiverConfig.load(first).mqtt.tls is None
    _one_clear_line(loa("device", "refresh", "loa-z-09", "--data", str(data)), "loa-z-09")


def test_mqtt_config_gives_each_device_its_own_topics(tmp_path: Path) -> None:
    from support import MqttProbe, RunningBroker, connected, wait_for_port

    from broadcast.fleet.brokers.mosquitto import find_mosquitto
    from broadcast.settings import Secrets
    from wire import protocol
    from wire.config import ReceiverConfig

    data, out = tmp_path / "data", tmp_path / "mosquitto"
    port, server_port = free_ports(2)
    _commune(data)
    for device_id, zone in (("loa-a-01", "thon-a"), ("loa-b-01", "thon-b")):
        added = loa("device", "add", device_id, "--zone", zone, "--data", str(data))
        assert added.returncode == 0, added.stderr
    argv = ["mqtt-config", "--data", str(data), "--out", str(out), "--port", str(port)]
    without_server = loa(*argv)
    assert without_server.returncode != 0 and "--server-port" in without_server.stderr
    assert "Traceback" not in without_server.stderr
    written = loa(*argv, "--server-port", str(server_port))
    assert written.returncode == 0, written.stderr
    assert f"LOA_MQTT_PORT={server_port}" in written.stderr, written.stderr
    conf = Path(written.stdout.strip())
    assert conf == (out / "mosquitto.conf").resolve()
    acl = (out / "acl").read_text()
    assert "user loa-a-01\ntopic write loa/v1/device/loa-a-01/state\n" in acl
    assert "topic read loa/v1/device/loa-a-01/manifest" in acl
    assert "topic write loa/v1/device/+/manifest" in acl  # the server's
    assert all((out / name).stat().st_mode & 0o077 == 0 for name in ("passwd", "acl"))

    binary = find_mosquitto()
    assert binary is not None, "install the Debian package 'mosquitto'"
    process = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    probes: list[MqttProbe] = []
    try:
        assert wait_for_port(LOOPBACK, port, 10) and wait_for_port(LOOPBACK, server_port, 10)
        broker = RunningBroker("mosquitto", LOOPBACK, port, server_port)
        server = connected(broker.server, "loa-server", Secrets(data).mqtt_password, "server")
        probes.append(server)
        for device_id in ("loa-a-01", "loa-b-01"):
            server.publish(
                protocol.device_manifest_topic(device_id), device_id.encode(), retain=True
            )
        password = ReceiverConfig.load(data / "devices" / "loa-a-01.json").mqtt.password
        device = connected(broker, "loa-a-01", password, "loa-a-01")
        probes.append(device)
        device.subscribe(protocol.device_manifest_topic("loa-b-01"))  # not its own: nothing
        device.subscribe_ok(protocol.device_manifest_topic("loa-a-01"))
        device.subscribe_ok(protocol.zone_command_topic("xa-test"))  # its commune's commands
        assert device.expect(protocol.device_manifest_topic("loa-a-01")).payload == b"loa-a-01"
        server.publish(protocol.zone_command_topic("xa-test"), b"for the commune")
        server.publish(protocol.zone_command_topic("thon-b"), b"for the other village")
        assert device.expect(protocol.zone_command_topic("xa-test")).payload == b"for the commune"
        assert [m.payload for m in device.drain()] == []
    finally:
        for probe in probes:
            probe.close()
        process.terminate()
        process.wait(timeout=10)


def test_settings_from_the_command_line_and_the_environment(tmp_path: Path) -> None:
    """The commands build their settings with Settings.load (tests/broadcast/test_settings.py
    covers every variable): an option given wins, an option left out leaves the variable."""
    from loa.cli import _settings, build_parser

    args = build_parser().parse_args(["serve", "--data", str(tmp_path), "--no-approval"])
    assert _settings(args).require_approval is False
    args = build_parser().parse_args(["serve", "--data", str(tmp_path)])
    assert _settings(args).require_approval is True
    args = build_parser().parse_args(["serve", "--data", str(tmp_path), "--trusted-proxies", "2"])
    assert _settings(args).trusted_proxies == 2


def test_a_bad_variable_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOA_PLAY_LEAD_S", "abc")
    result = loa("token", "create", "admin", "--data", str(tmp_path / "var"))
    _one_clear_line(result, "LOA_PLAY_LEAD_S must be a number of seconds from 0 to 60, not 'abc'")


def test_stream_config_writes_icecast_xml_with_the_installation_passwords(tmp_path: Path) -> None:
    result = loa(
        "stream-config", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "ice"),
        "--stream-port", "18011", "--port", "8099",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = tmp_path / "ice" / "icecast.xml"
    assert config.stat().st_mode & 0o777 == 0o600
    secrets = json.loads((tmp_path / "d" / "secrets.json").read_text())
    text = config.read_text()
    assert secrets["stream_source_password"] in text and "hackme" not in text
    assert "<port>18011</port>" in text
    assert "http://127.0.0.1:8099/live/listeners" in text
    again = loa("stream-config", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "ice"))
    assert again.returncode == 0 and secrets["stream_source_password"] in config.read_text()


def test_demo_says_in_one_line_whether_live_broadcasts_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken_port: int
) -> None:
    from broadcast.fleet import streaming
    from broadcast.settings import Settings
    from loa import cli

    settings = Settings(data_dir=tmp_path)
    monkeypatch.setattr(streaming, "find_icecast", lambda: None)
    assert cli._demo_stream(settings, chosen=False).startswith("off (icecast2 not found")
    assert not settings.live_enabled
    monkeypatch.setattr(streaming, "find_icecast", lambda: "/usr/bin/icecast2")
    monkeypatch.setattr(cli, "DEMO_STREAM_PORT", taken_port)
    assert "is in use" in cli._demo_stream(settings, chosen=False)
    assert not settings.live_enabled
    settings.stream_port = free_port()
    assert cli._demo_stream(settings, chosen=True) is None
    line = cli._live_line(settings, None)
    assert line.startswith(f"Icecast on http://127.0.0.1:{settings.stream_port}")
    settings.stream_port = 0  # it did not start after all
    assert cli._live_line(settings, None).startswith("off (icecast2 did not start")


def test_serve_with_stream_port_taken_is_one_clear_line(tmp_path: Path, taken_port: int) -> None:
    data = str(tmp_path)
    for step in (
        ("zones", "add", "--kind", "commune", "--name", "Xã Thử", "--data", data),
        ("user", "add", "admin", "--password", "mat-khau-dai-du", "--data", data),
    ):
        assert loa(*step).returncode == 0, step
    web_port, mqtt_port = free_ports(2)
    result = loa(
        "serve", "--data", data, "--port", str(web_port), "--mqtt-port", str(mqtt_port),
        "--embedded-broker", "--stream-port", str(taken_port),
    )  # fmt: skip
    _one_clear_line(result, f"stream port 127.0.0.1:{taken_port}")
