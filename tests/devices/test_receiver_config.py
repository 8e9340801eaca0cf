"""Config problems end in one line naming the file and the field, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices import agent, fleet
from devices.agent import load_config
from devices.fleet import FleetError, load_fleet
from wire.config import ConfigError
from wire.protocol import generate_private_key


@pytest.fixture
def good(tmp_path: Path, kit) -> dict:
    return kit.receiver_config(
        tmp_path, "loa-cfg-1", ["thon-1"], 1883, "pw", generate_private_key()
    )


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_good_config_loads(tmp_path: Path, good: dict) -> None:
    good["player"]["realtime"] = True
    config = load_config(write(tmp_path / "r.json", good))
    assert config.device_id == "loa-cfg-1"
    assert config.player.realtime is True


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("device_id"), "device_id"),
        (lambda d: d["mqtt"].pop("password"), "mqtt.password"),
        (lambda d: d.update(server_public_key="not-a-key"), "server_public_key"),
        (lambda d: d["player"].update(realtime="yes"), "player.realtime"),
        (lambda d: d["player"].update(kind="radio"), "player.kind"),
        (lambda d: d["mqtt"].update(port=70000), "mqtt.port"),
        (lambda d: d.update(cache_limit_mb=0), "cache_limit_mb"),
        (lambda d: d.update(zones="thon-1"), "zones"),
        (lambda d: d.update(amplifier=[]), "amplifier"),
        (lambda d: d.update(amplifier={"pin": "GPIO17"}), "amplifier.pin"),
        (lambda d: d.update(amplifier={"pin": True}), "amplifier.pin"),
        (lambda d: d.update(amplifier={"warmup_s": -1}), "amplifier.warmup_s"),
        (lambda d: d.update(amplifier={"idle_off_s": "2m"}), "amplifier.idle_off_s"),
        (lambda d: d.update(amplifier={"pin_factory": "pigpio"}), "amplifier.pin_factory"),
        (lambda d: d.update(mixer={"volume": 120}), "mixer.volume"),
        (lambda d: d.update(mixer={"control": ""}), "mixer.control"),
        (lambda d: d.update(mixer={"command": "amixer"}), "mixer.command"),
        (lambda d: d.update(heartbeat_s=0.1), "heartbeat_s"),
        (lambda d: d.update(preempt_policy="later"), "preempt_policy"),
        (lambda d: d["player"].update(relay_argv=[]), "player.relay_argv"),
        (lambda d: d["mqtt"].update(client_id=42), "mqtt.client_id"),
        (lambda d: d["mqtt"].update(client_id="loa-cfg-2-ab12"), "mqtt.client_id"),
        (lambda d: d["mqtt"].update(client_id="loa-cfg-1-a b"), "mqtt.client_id"),
        (lambda d: d["mqtt"].update(client_id="loa-cfg-1-"), "mqtt.client_id"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, good: dict, mutate, field: str) -> None:
    mutate(good)
    path = write(tmp_path / "r.json", good)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert field in message
    assert message.count(str(path)) == 1
    assert "\n" not in message


def test_optional_sections_default_and_round_trip(tmp_path: Path, good: dict) -> None:
    config = load_config(write(tmp_path / "r.json", good))
    assert (config.amplifier.pin, config.amplifier.warmup_s, config.amplifier.idle_off_s) == (
        None,
        1.0,
        120.0,
    )
    assert config.amplifier.pin_factory == "native"
    assert (config.mixer.control, config.mixer.volume) == ("Master", 85)
    assert config.mixer.command == ["amixer", "-q", "sset", "{control}", "{volume}%"]
    assert (config.heartbeat_s, config.preempt_policy) == (30.0, "resume")
    assert config.player.relay_argv == ["mpg123", "-q", "{url}"]
    assert config.mqtt.client_id_of("loa-cfg-1") == "loa-cfg-1"  # a config from before tokens

    good.update(
        amplifier={"pin": 17, "warmup_s": 2, "idle_off_s": 300, "pin_factory": "mock"},
        mixer={"control": "PCM", "volume": None},
        heartbeat_s=10,
        preempt_policy="drop",
    )
    good["mqtt"]["client_id"] = "loa-cfg-1-0123456789abcdef0123456789abcdef"
    config = load_config(write(tmp_path / "r2.json", good))
    assert config.mqtt.client_id_of("loa-cfg-1") == good["mqtt"]["client_id"]
    assert (config.amplifier.pin, config.amplifier.warmup_s) == (17, 2.0)
    assert (config.mixer.control, config.mixer.volume) == ("PCM", None)
    config.save(tmp_path / "saved.json")  # what the server writes when it registers a device
    assert load_config(tmp_path / "saved.json") == config


def test_not_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"device_id": "x",\n oops}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"r\.json: not valid JSON \(line 2"):
        load_config(path)


def test_agent_main_prints_one_line(tmp_path: Path, good: dict, capsys) -> None:
    del good["mqtt"]["host"]
    path = write(tmp_path / "r.json", good)
    assert agent.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"loa receiver: {path}: missing field 'mqtt.host'"]


def test_agent_main_missing_file(tmp_path: Path, capsys) -> None:
    assert agent.main(["--config", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"loa receiver: {tmp_path / 'nope.json'}: cannot read config file "
        "(No such file or directory)"
    )


def test_fleet_count_and_duplicates(tmp_path: Path, kit) -> None:
    key = generate_private_key()
    configs = tmp_path / "fleet"
    configs.mkdir()
    for index in range(2):
        write(
            configs / f"r{index}.json",
            kit.receiver_config(tmp_path, f"loa-f-{index}", ["thon-1"], 1883, "pw", key),
        )
    assert [c.device_id for c in load_fleet(configs, 1)] == ["loa-f-0"]
    assert len(load_fleet(configs)) == 2
    with pytest.raises(FleetError, match="--count 3 but only 2"):
        load_fleet(configs, 3)
    write(
        configs / "r2.json", kit.receiver_config(tmp_path, "loa-f-0", ["thon-1"], 1883, "pw", key)
    )
    with pytest.raises(FleetError, match=r"r2\.json: device_id 'loa-f-0' is also used by"):
        load_fleet(configs)


def test_fleet_main_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert fleet.main(["--config-dir", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.strip() == f"loa fleet: {tmp_path / 'none'}: not a directory"
