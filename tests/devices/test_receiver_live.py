"""A receiver and a live broadcast (phát trực tiếp): the PLAY of a live stream is verified like
any command (a forged or altered one is refused), and the stream is played until its maximum
duration, opened again for a short while when it is not up yet or breaks, then failed; once
heard, a stream the server refuses has ended."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from devices.http_get import HttpError
from devices.intake import CommandIntake
from devices.playback import Outcome, Run, launch, relay_live
from devices.players import PlayContext, PlayerError
from devices.players.file_sink import FileSinkPlayer
from devices.timeline import Item, Origin
from wire import protocol

ZONE_TOPIC = protocol.zone_command_topic("thon-1")
STREAM = "http://127.0.0.1:8010/loa-live-7.mp3?token=" + "a" * 32


def _context() -> PlayContext:
    return PlayContext(device_id="loa-1", command_id="c1", broadcast_id=7, sha256="")


def _live_body(url: str = STREAM) -> protocol.PlayBody:
    return protocol.PlayBody(
        broadcast_id=7,
        priority=protocol.Priority.EMERGENCY,
        content=protocol.ContentType.RELAY,
        relay_url=url,
        duration_s=600,
        live=True,
    )


def test_a_live_play_is_verified_like_any_command(tmp_path: Path, server_key, kit) -> None:
    intake = CommandIntake("loa-1", server_key.public_key(), tmp_path / "replay.json")
    _command, forged = kit.sign(protocol.generate_private_key(), _live_body(), stream=ZONE_TOPIC)
    assert intake.verify(ZONE_TOPIC, forged) is None
    _command, genuine = kit.sign(server_key, _live_body(), stream=ZONE_TOPIC)
    altered = genuine.replace(b"a" * 32, b"b" * 32)  # another mount's token, the signature kept
    assert altered != genuine and intake.verify(ZONE_TOPIC, altered) is None
    assert intake.rejected == 2
    command = intake.verify(ZONE_TOPIC, genuine)
    assert command is not None
    body = command.body
    assert isinstance(body, protocol.PlayBody) and body.live and body.relay_url == STREAM


def test_live_is_a_typed_flag_of_relays_only() -> None:
    plain = {"broadcast_id": 7, "content": "relay", "relay_url": STREAM, "duration_s": 60}
    assert protocol.PlayBody.from_dict(plain).live is False
    assert protocol.PlayBody.from_dict({**plain, "live": True}).live is True
    with pytest.raises(protocol.ProtocolError):
        protocol.PlayBody.from_dict({**plain, "live": "yes"})
    with pytest.raises(protocol.ProtocolError):
        media = {"broadcast_id": 7, "media_url": "http://x/a.mp3", "media_sha256": "0" * 64}
        protocol.PlayBody.from_dict({**media, "live": True})


def test_only_a_live_relay_carries_a_chime() -> None:
    plain = {"broadcast_id": 7, "content": "relay", "relay_url": STREAM, "duration_s": 60}
    chime = {"media_url": "http://x/c.mp3", "media_sha256": "c" * 64}
    body = protocol.PlayBody.from_dict({**plain, **chime, "live": True})
    assert body.media_sha256 == "c" * 64 and body.content is protocol.ContentType.RELAY
    for wrong in (
        {**plain, **chime},  # a plain relay plays its stream only
        {**plain, **chime, "live": True, "media_sha256": "C" * 64},
        {**plain, **chime, "live": True, "media_url": "file:///etc/passwd"},
        {**plain, "media_url": "http://x/c.mp3", "live": True},
    ):
        with pytest.raises(protocol.ProtocolError):
            protocol.PlayBody.from_dict(wrong)


class _Chimed:
    """A player that logs what it plays; its relays play one second."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def play(self, path: Path, context: PlayContext) -> None:
        context.on_start()
        self.log.append(f"file {path.name}")

    def relay(self, url: str, duration_s: float, context: PlayContext) -> None:
        self.log.append("stream")
        context.cancel.wait(min(1.0, duration_s))

    def stop(self) -> None:
        return


class _Cache:
    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def get(self, sha256: str) -> Path | None:
        return self.files.get(sha256)


def _live_run(body: protocol.PlayBody) -> Run:
    moment = time.time() + 0.2
    item = Item(
        uid="i1", body=body, command_id="c1", origin=Origin.COMMAND, issued_at=moment - 1,
        ready_at=moment, deadline=moment + 60, arrival=0,
    )  # fmt: skip
    return Run(item, moment)


@pytest.mark.parametrize("cached", [True, False])
def test_a_live_item_rings_its_chime_then_plays_the_voice(tmp_path: Path, cached: bool) -> None:
    """The chime first when it is in the cache; without it, straight to the voice: a live item
    never waits for its chime."""
    chime = tmp_path / "chime.mp3"
    chime.write_bytes(b"chime")
    body = replace(_live_body(), media_url="http://x/c.mp3", media_sha256="c" * 64, duration_s=1)
    item = Item(
        uid="i1", body=body, command_id="c1", origin=Origin.COMMAND, issued_at=0, ready_at=0,
        deadline=0, arrival=0,
    )  # fmt: skip
    assert item.wants_media and not item.needs_media  # fetched ahead, never waited for
    run, player = _live_run(body), _Chimed()
    launch(run, "loa-1", _Cache({"c" * 64: chime} if cached else {}), player, lambda: None)  # type: ignore[arg-type]
    assert run.thread is not None
    run.thread.join(10)
    assert run.outcome is Outcome.FINISHED
    assert player.log == (["file chime.mp3", "stream"] if cached else ["stream"])


@dataclass
class _Script:
    """A player whose relays do what the test says, one step per call: a number of seconds
    it plays, or an error it raises."""

    steps: list[float | PlayerError]
    calls: list[float] = field(default_factory=list)

    def relay(self, url: str, duration_s: float, context: PlayContext) -> None:
        self.calls.append(duration_s)
        step = self.steps.pop(0) if self.steps else PlayerError("relay: gone")
        if isinstance(step, PlayerError):
            raise step
        context.cancel.wait(min(step, duration_s))

    def play(self, path: Path, context: PlayContext) -> None:
        raise AssertionError("a live item plays no file")

    def stop(self) -> None:
        return


def _refused(status: int) -> PlayerError:
    error = PlayerError(f"relay: answered HTTP {status}")
    error.__cause__ = HttpError(STREAM, "refused", status)
    return error


def test_a_stream_not_up_yet_is_waited_for_then_plays_to_its_end() -> None:
    player = _Script([_refused(404), PlayerError("relay: cannot connect"), 1.5])
    began = time.monotonic()
    relay_live(player, STREAM, 1.2, _context(), retry_s=5)  # type: ignore[arg-type]
    assert len(player.calls) == 3 and player.calls[0] == pytest.approx(1.2, abs=0.05)
    assert 1.1 <= time.monotonic() - began < 2.5  # the maximum duration holds from the start


def test_a_stream_that_never_opens_fails_after_the_retry_window() -> None:
    player = _Script([])
    began = time.monotonic()
    with pytest.raises(PlayerError, match="gave up after 1 s"):
        relay_live(player, STREAM, 30, _context(), retry_s=1)  # type: ignore[arg-type]
    assert 1.0 <= time.monotonic() - began < 3.0


def test_a_broken_stream_is_reopened_and_a_refused_one_has_ended() -> None:
    player = _Script([1.2, PlayerError("relay: cut"), 1.2, _refused(401)])
    relay_live(player, STREAM, 30, _context(), retry_s=5)  # type: ignore[arg-type]
    assert len(player.calls) == 4  # heard, broke, heard again, then ended by the server

    never_heard = _Script([_refused(401)])
    with pytest.raises(PlayerError, match="refused this receiver"):
        relay_live(never_heard, STREAM, 30, _context(), retry_s=5)  # type: ignore[arg-type]


def test_a_stop_ends_a_live_stream_at_once() -> None:
    context = _context()
    threading.Timer(0.3, context.cancel.set).start()
    began = time.monotonic()
    relay_live(_Script([30.0]), STREAM, 30, context, retry_s=5)  # type: ignore[arg-type]
    assert time.monotonic() - began < 1.5


def test_the_file_sink_waits_for_a_live_stream_that_starts_late(
    tmp_path: Path, media_server, kit
) -> None:
    name = "live/late.mp3"
    timer = threading.Timer(
        1.0, media_server.live.__setitem__, (name, (kit.tone_mp3(1.0, 730), 4000))
    )
    timer.start()
    player = FileSinkPlayer(tmp_path / "played", "loa-1")
    began = time.monotonic()
    relay_live(player, media_server.url(name), 2.5, _context(), retry_s=5)
    assert 2.4 <= time.monotonic() - began < 4.0
    lines = kit.played_lines(tmp_path / "played")
    assert [line["content"] for line in lines] == ["relay"] and lines[0]["bytes"] > 0
    del media_server.live[name]
