"""Sequence epochs: the signed way back for a stream locked by one far-future sequence.

At the protocol level (`SequenceGuard`) and at the receiver's intake (what `replay.json` keeps:
older files still load, a new server key starts afresh, stale refusals are counted for
`loa doctor`). The same story with a real agent process and a real broker is in
test_receiver_epochs.py.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from devices.doctor import streams_check
from devices.intake import CommandIntake, ReplayState
from wire import protocol

ZONE = protocol.zone_command_topic("thon-1")
DEVICE_TOPIC = protocol.device_command_topic("loa-1")
FAR = 10**12


def _command(seq: int, epoch: int = 0, stream: str = ZONE) -> protocol.Command:
    return protocol.new_command(protocol.StopBody(7), stream=stream, seq=seq, epoch=epoch)


def _refusal(guard: protocol.SequenceGuard, command: protocol.Command) -> str:
    with pytest.raises(protocol.ProtocolError) as caught:
        guard.check(command, command.stream)
    return caught.value.reason


def _accept(guard: protocol.SequenceGuard, command: protocol.Command) -> None:
    assert guard.check(command, command.stream)
    guard.remember(command)


def test_a_newer_epoch_resets_the_stream_and_older_epochs_are_refused_everywhere() -> None:
    guard = protocol.SequenceGuard()
    _accept(guard, _command(5, stream=DEVICE_TOPIC))
    _accept(guard, _command(FAR))  # the far-future one: accepted on a stream that had none
    assert _refusal(guard, _command(43)) == "replayed"  # the lock-out, within epoch 0
    _accept(guard, _command(44, epoch=3))  # a newer epoch: the stream starts afresh
    _accept(guard, _command(45, epoch=3))
    assert guard.floor == 3
    assert _refusal(guard, _command(FAR + 1)) == "old_epoch"
    # another stream that has not seen epoch 3 yet refuses epoch 0 too
    assert _refusal(guard, _command(6, stream=DEVICE_TOPIC)) == "old_epoch"
    _accept(guard, _command(2, epoch=3, stream=DEVICE_TOPIC))


def test_a_sequence_implausibly_far_ahead_is_refused_within_an_epoch() -> None:
    guard = protocol.SequenceGuard()
    _accept(guard, _command(10))
    assert _refusal(guard, _command(10 + protocol.MAX_SEQ_JUMP + 1)) == "too_far_ahead"
    _accept(guard, _command(10 + protocol.MAX_SEQ_JUMP))  # months of missed commands: fine
    _accept(guard, _command(FAR, epoch=1))  # a new epoch may start anywhere


def test_a_command_without_an_epoch_is_epoch_0() -> None:
    key = protocol.generate_private_key()
    command = _command(3)
    unsigned = command.to_unsigned()
    del unsigned["epoch"]  # what a server before epochs signed
    signature = key.sign(protocol.canonical_json(unsigned))
    payload = json.dumps({**unsigned, "sig": base64.b64encode(signature).decode()}).encode()
    verified = protocol.verify_command(payload, key.public_key())
    assert verified.epoch == 0 and verified.seq == 3
    assert (
        protocol.verify_command(
            protocol.sign_command(_command(4, epoch=9), key), key.public_key()
        ).epoch
        == 9
    )


def test_an_old_replay_file_keeps_protecting_its_streams(tmp_path: Path) -> None:
    """`replay.json` as an agent before epochs wrote it: streams are epoch 0."""
    key = protocol.generate_private_key()
    path = tmp_path / "replay.json"
    path.write_text(json.dumps({"ids": {}, "streams": {ZONE: [FAR, "x"]}}))
    intake = CommandIntake("loa-1", key.public_key(), path)
    assert intake.verify(ZONE, protocol.sign_command(_command(43), key)) is None
    assert intake.rejected == 1
    newer = intake.verify(ZONE, protocol.sign_command(_command(44, epoch=1), key))
    assert newer is not None
    intake.remember(newer)
    saved = json.loads(path.read_text())
    assert saved["streams"][ZONE] == [44, newer.id]  # the shape older agents read
    assert saved["epochs"] == {ZONE: 1} and saved["epoch"] == 1


def test_stale_refusals_are_kept_for_the_doctor_until_the_stream_accepts_again(
    tmp_path: Path,
) -> None:
    key = protocol.generate_private_key()
    key_text = protocol.public_key_to_text(key.public_key())
    path = tmp_path / "replay.json"
    intake = CommandIntake("loa-1", key.public_key(), path)
    far = intake.verify(ZONE, protocol.sign_command(_command(FAR), key))
    assert far is not None
    intake.remember(far)
    assert streams_check(tmp_path, "loa-1", key_text).ok

    replay = protocol.sign_command(far, key)
    assert intake.verify(ZONE, protocol.sign_command(_command(42), key)) is None
    assert intake.verify(ZONE, protocol.sign_command(_command(43), key)) is None
    intake.verify(ZONE, replay)  # the same message again: a duplicate, not a refusal
    [stale] = ReplayState.load(path, "loa-1", key_text).stale_streams()
    assert (stale.topic, stale.refused, stale.refused_seq, stale.stored_seq) == (ZONE, 2, 43, FAR)
    assert time.time() - 60 < stale.since <= time.time()

    check = streams_check(tmp_path, "loa-1", key_text)
    assert not check.ok
    assert f"{ZONE} refused 2 command(s) as stale" in check.detail
    assert f"stored sequence {FAR} (epoch 0) is {FAR - 43} ahead of the server's latest" in (
        check.detail
    )
    assert "loa keys rotate" in check.fix and "--epoch-only" in check.fix

    back = intake.verify(ZONE, protocol.sign_command(_command(44, epoch=5), key))
    assert back is not None
    intake.remember(back)
    assert streams_check(tmp_path, "loa-1", key_text).ok


def test_a_new_server_key_starts_the_stream_memory_afresh(tmp_path: Path) -> None:
    old, new = protocol.generate_private_key(), protocol.generate_private_key()
    path = tmp_path / "replay.json"
    intake = CommandIntake("loa-1", old.public_key(), path)
    far = intake.verify(ZONE, protocol.sign_command(_command(FAR, epoch=9), old))
    assert far is not None
    intake.remember(far)
    assert intake.verify(ZONE, protocol.sign_command(_command(5), old)) is None  # stale

    refreshed = CommandIntake("loa-1", new.public_key(), path)  # `loa device refresh`
    new_key_text = protocol.public_key_to_text(new.public_key())
    assert streams_check(tmp_path, "loa-1", new_key_text).ok
    first = refreshed.verify(ZONE, protocol.sign_command(_command(6, epoch=10), new))
    assert first is not None
    refreshed.remember(first)
    assert refreshed.verify(ZONE, protocol.sign_command(_command(FAR + 1, epoch=10), old)) is None
    assert refreshed.rejected == 1  # the old key signs nothing any more
