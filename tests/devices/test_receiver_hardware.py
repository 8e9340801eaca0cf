"""Amplifier power (gpiozero MockFactory), ALSA volume, heartbeat facts and the stored programme."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import pytest

from devices.amplifier import Amplifier, AmplifierError
from devices.heartbeat import Snapshot, cpu_temperature_c, status_extra
from devices.intake import CommandIntake
from devices.mixer import Mixer
from devices.store import ReceiverStore
from wire import protocol
from wire.config import AmplifierSettings, MixerSettings
from wire.protocol import ReceiverState


def test_amplifier_rules_with_a_mock_pin() -> None:
    amp = Amplifier(AmplifierSettings(pin=22, warmup_s=2.0, idle_off_s=60, pin_factory="mock"))
    pin = amp.factory.pin(22)
    assert (amp.controlled, amp.is_on, pin.state) == (True, False, False)
    assert amp.ready_at(100.0) == 102.0  # cold: audio waits for the warm-up
    assert amp.switch_on(100.0) and pin.state is True
    assert not amp.switch_on(100.5)  # already on
    assert amp.ready_at(101.0) == 102.0 and amp.ready_at(105.0) == 105.0
    amp.touch(130.0)
    assert amp.off_due_at() == 190.0
    assert amp.switch_off(190.0) and pin.state is False
    assert amp.off_due_at() is None
    amp.switch_on(200.0)
    amp.close()
    assert pin.state is False


def test_no_pin_means_no_control() -> None:
    amp = Amplifier(AmplifierSettings(pin=None, warmup_s=5.0))
    assert not amp.controlled and amp.warmup_s == 0.0
    assert amp.ready_at(10.0) == 10.0
    assert not amp.switch_on(10.0) and not amp.is_on
    amp.close()


@pytest.mark.filterwarnings("ignore::gpiozero.exc.PinFactoryFallback")
def test_a_pin_that_cannot_be_driven_names_the_field() -> None:
    with pytest.raises(AmplifierError, match=r"amplifier\.pin"):
        Amplifier(AmplifierSettings(pin=17, pin_factory="native"))  # no GPIO on this machine


def test_mixer_runs_its_command_and_warns_once(tmp_path: Path, caplog) -> None:
    out = tmp_path / "mixer.txt"
    script = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(' '.join(sys.argv[2:]))"
    mixer = Mixer(
        MixerSettings(
            control="PCM",
            volume=70,
            command=[sys.executable, "-c", script, str(out), "{control}", "{volume}%"],
        )
    )
    assert mixer.apply()
    assert out.read_text() == "PCM 70%"
    assert not Mixer(MixerSettings(volume=None)).apply()  # leave the volume alone
    assert not Mixer(MixerSettings(volume=50), enabled=False).apply()  # file sink: no card
    caplog.set_level(logging.WARNING, logger="devices.mixer")
    missing = Mixer(MixerSettings(command=["loa-no-such-amixer", "{control}", "{volume}%"]))
    assert not missing.apply() and not missing.apply()
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["mixer: loa-no-such-amixer not found: the volume is left as it is"]
    failing = Mixer(
        MixerSettings(command=[sys.executable, "-c", "import sys; sys.exit('no card')"])
    )
    assert not failing.apply()
    assert "exited with status 1: no card" in caplog.text


def test_heartbeat_extra(tmp_path: Path) -> None:
    thermal = tmp_path / "temp"
    thermal.write_text("48312\n")
    assert cpu_temperature_c(thermal) == 48.3
    assert cpu_temperature_c(tmp_path / "none") is None
    snapshot = Snapshot(
        ReceiverState.PLAYING,
        broadcast_id=7,
        item_id="b7-morning",
        manifest_items=12,
        manifest_seq=41,
        cache_complete=0.75,
        amplifier_on=True,
    )
    extra = status_extra(
        snapshot,
        version="0.1.0",
        started_at=time.time() - 90,
        data_dir=tmp_path,
        rejected_commands=3,
        clock_offset_s=-0.12345,
        broker="node2.example:8883",
        thermal_path=thermal,
    )
    assert {k: extra[k] for k in ("current_item", "cache_complete", "manifest_items")} == {
        "current_item": "b7-morning",
        "cache_complete": 0.75,
        "manifest_items": 12,
    }
    assert (extra["rejected_commands"], extra["clock_offset_s"], extra["version"]) == (
        3,
        -0.123,
        "0.1.0",
    )
    assert 89 <= extra["uptime_s"] < 120
    assert extra["broker"] == "node2.example:8883"
    assert extra["cpu_temp_c"] == 48.3 and extra["disk_free_mb"] > 0
    json.dumps(extra)  # it travels as JSON
    assert not snapshot.changed_from(Snapshot(**{**snapshot.__dict__, "cache_complete": 0.8}))
    # the last file arriving is news even when nothing else moves (an idle receiver, a manifest
    # for later): the server waits for a complete cache
    complete = Snapshot(**{**snapshot.__dict__, "cache_complete": 1.0})
    assert complete.changed_from(snapshot) and snapshot.changed_from(complete)
    assert snapshot.changed_from(Snapshot(**{**snapshot.__dict__, "state": ReceiverState.IDLE}))


def test_stored_copies_are_verified_again(tmp_path: Path) -> None:
    key = protocol.generate_private_key()
    intake = CommandIntake("loa-1", key.public_key(), tmp_path / "replay.json")
    topic = protocol.device_manifest_topic("loa-1")
    manifest = protocol.new_command(
        protocol.ManifestBody("loa-1", time.time(), time.time() + 60),
        stream=topic,
        seq=1,
        ttl_s=1,
        now=time.time() - 3600,  # long expired as a message: still fine as a stored copy
    )
    payload = protocol.sign_command(manifest, key)
    store = ReceiverStore(tmp_path, "loa-1")
    assert store.save_manifest(payload)
    assert store.load_manifest() == payload
    assert intake.reload(topic, payload).id == manifest.id
    assert intake.reload(protocol.device_command_topic("loa-1"), payload) is None  # moved
    assert intake.reload(topic, payload.replace(b"loa-1", b"loa-2")) is None  # edited
    assert intake.verify(topic, payload) is None and intake.rejected == 1  # expired on arrival
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    (tmp_path / "memory.json").write_text("[1, 2")
    assert store.load_memory() == {}
    assert store.load_commands() == {}


def test_old_replay_file_is_still_read(tmp_path: Path) -> None:
    key = protocol.generate_private_key()
    topic = protocol.zone_command_topic("thon-1")
    command = protocol.new_command(protocol.StopBody(), stream=topic, seq=5)
    (tmp_path / "replay.json").write_text(json.dumps({command.id: command.expires_at}))
    intake = CommandIntake("loa-1", key.public_key(), tmp_path / "replay.json")
    assert intake.verify(topic, protocol.sign_command(command, key)) is None
    assert intake.rejected == 1  # the id was remembered in the old format
