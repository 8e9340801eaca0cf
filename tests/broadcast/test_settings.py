"""Settings.load, the one way a server process gets its settings: command-line options over
LOA_* variables over defaults, every setting reachable from the environment (gunicorn), and a
clear error naming the variable and the value."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from service_support import make_service
from support import REPO_ROOT, RunningBroker, free_port

from broadcast.errors import LoaError
from broadcast.fleet import registry
from broadcast.settings import SOURCES, Settings
from loa.cli import build_parser

ENV = {
    "LOA_DATA_DIR": "d",
    "LOA_HOST": "0.0.0.0",
    "LOA_PORT": "8099",
    "LOA_PUBLIC_URL": "https://loa.example.vn",
    "LOA_DATABASE_URL": "postgresql+psycopg://loa@db/loa",
    "LOA_MQTT_HOST": "10.0.0.2",
    "LOA_MQTT_PORT": "1884",
    "LOA_MQTT_HOSTS": "10.0.0.2:1884,10.0.0.3:1884",
    "LOA_MQTT_TLS_CA": "system",
    "LOA_MQTT_TLS_CERT": "/etc/loa/server.pem",
    "LOA_MQTT_TLS_KEY": "/etc/loa/server.key",
    "LOA_DEVICE_MQTT_HOST": "mqtt.example.vn",
    "LOA_DEVICE_MQTT_PORT": "8883",
    "LOA_DEVICE_MQTT_TLS_CA": "/etc/loa/ca.pem",
    "LOA_DEVICE_MQTT_HOSTS": "node1.example.vn:8883,node2.example.vn:8883",
    "LOA_TTS": "piper",
    "LOA_TTS_MODEL": "/voices/vi.onnx",
    "LOA_PLAY_LEAD_S": "4.5",
    "LOA_ROUTINE_PLAY_LEAD_S": "20",
    "LOA_REQUIRE_APPROVAL": "0",
    "LOA_TRUSTED_PROXIES": "1",
    "LOA_SOURCE_PRIVATE_AUDIO": "1",
    "LOA_STREAM_PORT": "8010",
    "LOA_STREAM_URL": "http://stream.example.vn:8010/",
}


def test_every_setting_from_the_environment(tmp_path: Path) -> None:
    assert set(ENV) == {source.env for source in SOURCES}  # this test covers every variable
    settings = Settings.load(None, {**ENV, "LOA_DATA_DIR": str(tmp_path / "d")})
    assert settings.data_dir == (tmp_path / "d").resolve()
    assert (settings.host, settings.port) == ("0.0.0.0", 8099)
    assert settings.public_url == "https://loa.example.vn"
    assert settings.database_url == "postgresql+psycopg://loa@db/loa"
    assert (settings.mqtt_host, settings.mqtt_port) == ("10.0.0.2", 1884)
    assert settings.mqtt_tls_ca == "system"
    assert (settings.mqtt_tls_cert, settings.mqtt_tls_key) == (
        "/etc/loa/server.pem",
        "/etc/loa/server.key",
    )
    assert (settings.device_mqtt_host, settings.device_mqtt_port) == ("mqtt.example.vn", 8883)
    assert settings.device_mqtt_tls_ca == "/etc/loa/ca.pem"
    assert [str(address) for address in settings.server_brokers] == [
        "10.0.0.2:1884",
        "10.0.0.3:1884",
    ]
    assert [str(address) for address in settings.receiver_brokers] == [
        "node1.example.vn:8883",
        "node2.example.vn:8883",
    ]
    assert settings.tts_engine == "piper" and settings.tts_options == {"model": "/voices/vi.onnx"}
    assert (settings.play_lead_s, settings.routine_play_lead_s) == (4.5, 20.0)
    assert settings.require_approval is False and settings.trusted_proxies == 1
    assert settings.source_private_audio is True
    assert settings.live_enabled and settings.stream_source == ("127.0.0.1", 8010)
    assert settings.receiver_stream_url == "http://stream.example.vn:8010"
    assert settings.listener_check_url == "http://127.0.0.1:8099/live/listeners"


def test_defaults_without_options_or_environment(tmp_path: Path) -> None:
    settings = Settings.load(build_parser().parse_args(["serve"]), {})
    assert settings == Settings(data_dir=Path("var"))
    assert settings.require_approval is True and settings.tts_options == {}


def test_options_win_over_the_environment(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--data", str(tmp_path / "cli"),
            "--port", "8100",
            "--mqtt-host", "127.0.0.1",
            "--tts-model", "/cli.onnx",
            "--play-lead", "2",
            "--routine-play-lead", "30",
            "--no-approval",
            "--trusted-proxies", "2",
        ]
    )  # fmt: skip
    env = {**ENV, "LOA_REQUIRE_APPROVAL": "1"}
    settings = Settings.load(args, env)
    assert settings.data_dir == (tmp_path / "cli").resolve() and settings.port == 8100
    assert settings.mqtt_host == "127.0.0.1" and settings.tts_options == {"model": "/cli.onnx"}
    assert (settings.play_lead_s, settings.routine_play_lead_s) == (2.0, 30.0)
    assert settings.require_approval is False and settings.trusted_proxies == 2
    # what the command line did not give still comes from the environment
    assert settings.mqtt_port == 1884 and settings.public_url == "https://loa.example.vn"
    device = build_parser().parse_args(["device", "add", "x", "--zone", "z", "--mqtt-port", "8884"])
    assert Settings.load(device, ENV).device_mqtt_port == 8884


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LOA_PLAY_LEAD_S", "abc", "LOA_PLAY_LEAD_S must be a number of seconds from 0 to 60"),
        ("LOA_PLAY_LEAD_S", "-1", "LOA_PLAY_LEAD_S must be a number of seconds from 0 to 60"),
        ("LOA_PLAY_LEAD_S", "nan", "from 0 to 60, not 'nan'"),
        ("LOA_ROUTINE_PLAY_LEAD_S", "601", "from 0 to 600, not '601'"),
        ("LOA_PORT", "80a", "LOA_PORT must be a port number from 1 to 65535, not '80a'"),
        ("LOA_MQTT_PORT", "70000", "LOA_MQTT_PORT must be a port number"),
        ("LOA_DEVICE_MQTT_PORT", "tls", "LOA_DEVICE_MQTT_PORT must be a port number"),
        ("LOA_TTS", "festival", "LOA_TTS must be one of espeak, gtts, piper, not 'festival'"),
        ("LOA_REQUIRE_APPROVAL", "maybe", "LOA_REQUIRE_APPROVAL must be 1"),
        ("LOA_TRUSTED_PROXIES", "nginx", "LOA_TRUSTED_PROXIES must be a whole number"),
        ("LOA_SOURCE_PRIVATE_AUDIO", "lan", "LOA_SOURCE_PRIVATE_AUDIO must be 1 or 0"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(name: str, value: str, message: str) -> None:
    with pytest.raises(LoaError) as caught:
        Settings.load(None, {name: value})
    assert message in str(caught.value) and repr(value) in str(caught.value)


def test_a_voice_model_needs_piper() -> None:
    with pytest.raises(LoaError, match=r"LOA_TTS_MODEL .* set LOA_TTS=piper"):
        Settings.load(None, {"LOA_TTS_MODEL": "/voices/vi.onnx"})


def test_a_bad_option_names_the_option() -> None:
    args = build_parser().parse_args(["serve", "--play-lead", "120"])
    with pytest.raises(LoaError, match=r"--play-lead must be a number of seconds .* not '120.0'"):
        Settings.load(args, {"LOA_PLAY_LEAD_S": "3"})


@pytest.fixture
def broker_port(tmp_path: Path, broker_factory: Callable[..., RunningBroker]) -> int:
    """A real broker that knows the server's account on tmp_path/var: the port for the server."""
    service = make_service(tmp_path / "var")
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
    service.stop()
    return broker_factory("amqtt", access).server_port


def _wsgi(tmp_path: Path, mqtt_port: int, **env: str) -> subprocess.CompletedProcess[str]:
    """Import web.wsgi as a gunicorn worker does, print what its app's service was given."""
    code = (
        "import os, web.wsgi as w\n"
        "s = w.app.extensions['loa_service'].settings\n"
        "print(s.play_lead_s, s.routine_play_lead_s, s.tts_engine, flush=True)\n"
        "os._exit(0)\n"  # the service's threads are not what is tested here
    )
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LOA_") or name == "LOA_DATABASE_URL"  # --db postgresql
    }
    environ |= {
        "PYTHONPATH": str(REPO_ROOT),
        "LOA_DATA_DIR": str(tmp_path / "var"),
        "LOA_PORT": str(free_port()),
        "LOA_MQTT_PORT": str(mqtt_port),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        cwd=tmp_path,
        check=False,
    )


def test_gunicorn_workers_get_the_play_leads_and_the_tts_engine_from_the_environment(
    tmp_path: Path, broker_port: int
) -> None:
    result = _wsgi(
        tmp_path,
        broker_port,
        LOA_PLAY_LEAD_S="7.5",
        LOA_ROUTINE_PLAY_LEAD_S="42",
        LOA_TTS="gtts",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "7.5 42.0 gtts"


def test_a_gunicorn_worker_with_a_bad_variable_says_so_without_a_traceback(
    tmp_path: Path,
) -> None:
    result = _wsgi(tmp_path, free_port(), LOA_PLAY_LEAD_S="abc")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert "LOA_PLAY_LEAD_S must be a number of seconds from 0 to 60, not 'abc'" in result.stderr
