"""`loa keys rotate`: a new sequence epoch (and by default a new signing key), the way back for
receivers that refuse a stream as stale. What a receiver does with it is in
tests/devices/test_receiver_epochs.py; here, what the server sends after it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from service_support import add_devices, recording_service, seed_commune, wait_for
from sqlalchemy import select

from broadcast.people import audit
from broadcast.store import sequences
from broadcast.store.models import AuditEntry
from loa.cli import main as loa
from wire import protocol

from .conftest import Leader


def _rotate(data: Path, capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str]:
    assert loa(["keys", "rotate", "--data", str(data), *options]) == 0
    captured = capsys.readouterr()
    epoch = int(captured.out.split("sequence epoch ")[1].split()[0])
    return epoch, captured.out + captured.err


def _plays(leader: Leader, topic: str) -> list[protocol.Command]:
    return [s.command for s in leader.sent.on(topic) if s.command.kind is protocol.CommandKind.PLAY]


def test_a_new_epoch_reaches_every_message_and_every_manifest_at_once(
    leader: Leader, capsys: pytest.CaptureFixture[str]
) -> None:
    service, zone = leader.service, protocol.zone_command_topic("thon-a")
    service.announcements.announce(leader.users.officer, "Thông báo trước khi đổi.", ["thon-a"])
    [before] = wait_for(lambda: _plays(leader, zone), 30, "the first play")
    assert before.epoch == 0  # no rotation yet: what receivers before epochs expect
    leader.sent.clear()

    started = int(time.time())
    epoch, said = _rotate(service.settings.data_dir, capsys, "--epoch-only")
    assert started <= epoch <= int(time.time()) + 1
    assert "signing key" not in said  # the key stays: receivers accept the epoch over the air

    service.leader.tick()  # what the leader does every few seconds: it sees the new epoch
    manifests = [s.command for s in leader.sent.sent if s.retain]
    assert {m.stream for m in manifests} == {
        protocol.device_manifest_topic(device) for device in ("loa-a-01", "loa-a-02", "loa-b-01")
    }
    assert {m.epoch for m in manifests} == {epoch}

    service.announcements.announce(leader.users.officer, "Thông báo sau khi đổi.", ["thon-a"])
    [after] = wait_for(lambda: _plays(leader, zone), 30, "the play after the rotation")
    assert after.epoch == epoch and after.seq == before.seq + 1  # verified with the same key

    again, _ = _rotate(service.settings.data_dir, capsys, "--epoch-only")
    assert again > epoch  # within the same second too: epochs only go forward
    assert sequences.advance_epoch(service.db.engine, 5) == again + 1  # a clock set back
    with service.db.session() as session:
        rotations = session.scalars(
            select(AuditEntry).where(AuditEntry.action == audit.Action.KEYS_ROTATE.value)
        ).all()
        assert [r.detail["epoch"] for r in rotations] == [epoch, again]
        assert audit.verify(session).ok


def test_a_new_key_replaces_the_old_one_and_refreshed_configs_carry_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    service, _recorder = recording_service(data)
    seed_commune(service)
    add_devices(service, {"loa-a-01": "thon-a"})
    old_key = service.signing_key
    service.stop()
    key_file = data / "keys" / "server_ed25519.pem"

    epoch, said = _rotate(data, capsys)
    new_text = said.split("signing key ")[1].split()[0]
    assert new_text != protocol.public_key_to_text(old_key.public_key())
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "Restart every server process" in said and "loa device refresh" in said

    assert loa(["device", "refresh", "--data", str(data)]) == 0
    capsys.readouterr()
    config = json.loads((data / "devices" / "loa-a-01.json").read_text(encoding="utf-8"))
    assert config["server_public_key"] == new_text

    restarted, recorder = recording_service(data)
    try:
        restarted.start()
        topic = protocol.device_command_topic("loa-a-01")
        command = restarted.dispatcher.send(topic, protocol.StopBody(1))  # type: ignore[union-attr]
        [sent] = recorder.on(topic)  # the recorder verified it with the key now on disk
        assert protocol.public_key_to_text(restarted.signing_key.public_key()) == new_text
        assert sent.command.epoch == epoch
        payload = protocol.sign_command(command, restarted.signing_key)
        with pytest.raises(protocol.ProtocolError, match="bad_signature"):
            protocol.verify_command(payload, old_key.public_key())
    finally:
        restarted.stop()
