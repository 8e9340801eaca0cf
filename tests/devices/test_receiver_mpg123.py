"""The mpg123 player with a real `mpg123 -R` (dummy output: no sound card needed): ready before
the start, started by one write, cut before the start without a sound or a process left."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from devices.playback import CutReason, Outcome, Run, launch
from devices.players import PlayContext, PlayerError, Preparing, make_player
from devices.players.mpg123 import Mpg123Player
from devices.timeline import Item, Origin
from wire import protocol
from wire.config import PlayerSettings, ReceiverConfig
from wire.protocol import PlayBody

SHA = "cd" * 32
ARGV = ["mpg123", "-R", "-o", "dummy"]


@pytest.fixture(autouse=True)
def _mpg123_installed() -> None:
    # CI installs it (.ci/run): a missing mpg123 fails loudly, never skips.
    assert shutil.which("mpg123"), "mpg123 is needed for these tests: apt-get install mpg123"


def players_running() -> list[int]:
    """This process's live child processes that are mpg123 (or the stand-in below)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # it just ended
        # A zombie ("Z") has exited; its parent has not reaped it yet.
        if int(parent) == os.getpid() and state != "Z" and b"mpg123" in cmdline:
            found.append(int(stat.parent.name))
    return found


def context(starts: list[float] | None = None) -> PlayContext:
    on_start = (lambda: starts.append(time.monotonic())) if starts is not None else None
    extra: dict[str, Any] = {"on_start": on_start} if on_start else {}
    return PlayContext(device_id="loa-1", command_id="c1", broadcast_id=7, sha256=SHA, **extra)


def tone(tmp_path: Path, kit, name: str = "tone.mp3", seconds: float = 1.0) -> Path:
    path = tmp_path / name
    path.write_bytes(kit.tone_mp3(seconds, 523))
    return path


def test_a_prepared_play_starts_when_asked_and_finishes(tmp_path: Path, kit) -> None:
    player = Mpg123Player(ARGV)
    assert isinstance(player, Preparing)
    path = tone(tmp_path, kit, "with space.mp3")
    starts: list[float] = []
    ctx = context(starts)
    player.prepare(path, ctx)
    assert len(players_running()) == 1  # loaded, paused, waiting for the start
    assert starts == []
    player.play(path, ctx)
    assert len(starts) == 1
    assert players_running() == []
    player.release(ctx)  # after the play: nothing left to drop


def test_a_play_with_nothing_prepared_loads_first(tmp_path: Path, kit) -> None:
    """A repeat, or a player used without `prepare`: the same process, started late."""
    starts: list[float] = []
    Mpg123Player(ARGV).play(tone(tmp_path, kit), context(starts))
    assert len(starts) == 1
    assert players_running() == []


def test_a_cut_before_the_start_plays_nothing_and_leaves_no_process(tmp_path: Path, kit) -> None:
    player = Mpg123Player(ARGV)
    path = tone(tmp_path, kit)
    starts: list[float] = []
    ctx = context(starts)
    player.prepare(path, ctx)
    ctx.cancel.set()
    player.play(path, ctx)  # a play that comes anyway does nothing
    player.release(ctx)
    assert starts == [] and players_running() == []
    other = context(starts)
    player.prepare(path, other)
    player.release(other)  # the run was cut and never played
    assert starts == [] and players_running() == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"mpg123 cannot play absent\.mp3: Error opening stream"),
        (b"\x00not an mp3 at all" * 500, r"mpg123 cannot play bad\.mp3: Error reading the stream"),
    ],
)
def test_a_missing_or_corrupt_file_is_a_clear_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / ("absent.mp3" if content is None else "bad.mp3")
    if content is not None:
        path.write_bytes(content)
    player = Mpg123Player(ARGV)
    for step in (player.prepare, player.play):
        with pytest.raises(PlayerError, match=message):
            step(path, context())
        assert players_running() == []


def test_a_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlayerError, match="player command not found: no-such-mpg123"):
        Mpg123Player(["no-such-mpg123", "-R"]).prepare(tmp_path / "x.mp3", context())


FAKE_MPG123 = """
import sys
print("@R MPG123 (fake)", flush=True)
for line in sys.stdin:
    word = line.split(" ", 1)[0].strip().upper()
    answer = {"LOADPAUSED": "@P 1", "FORMAT": "@FORMAT 22050 1", "PAUSE": "@P 2"}.get(word)
    if word == "QUIT":
        break
    if answer:
        print(answer, flush=True)
"""


def test_stop_ends_a_play_in_progress(tmp_path: Path) -> None:
    """A stand-in for mpg123 that plays until told to quit (the dummy output is not paced)."""
    script = tmp_path / "fake_mpg123.py"
    script.write_text(FAKE_MPG123, encoding="utf-8")
    player = Mpg123Player([sys.executable, str(script)])
    starts: list[float] = []
    ctx = context(starts)
    path = tmp_path / "long.mp3"
    player.prepare(path, ctx)
    thread = threading.Thread(target=player.play, args=(path, ctx))
    thread.start()
    deadline = time.monotonic() + 10
    while not starts and time.monotonic() < deadline:
        time.sleep(0.01)
    assert starts and thread.is_alive()
    player.stop()
    thread.join(5)
    assert not thread.is_alive() and ctx.cancel.is_set()
    assert players_running() == []


class _Cache:
    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, sha256: str) -> Path:
        return self.path


def run_at(moment: float) -> Run:
    item = Item(
        uid="i1",
        body=PlayBody(broadcast_id=7, media_sha256=SHA, play_at=moment),
        command_id="c1",
        origin=Origin.COMMAND,
        issued_at=moment - 3,
        ready_at=moment,
        deadline=moment + 60,
        arrival=0,
    )
    return Run(item, moment)


def test_a_run_prepares_ahead_and_a_cut_run_leaves_nothing(tmp_path: Path, kit) -> None:
    cache: Any = _Cache(tone(tmp_path, kit))
    player = Mpg123Player(ARGV)
    run = run_at(time.time() + 0.5)
    launch(run, "loa-1", cache, player, lambda: None)
    deadline = time.monotonic() + 5
    while not players_running() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert players_running() and not run.started  # ready well before its start
    assert run.thread is not None
    run.thread.join(5)
    assert run.outcome is Outcome.FINISHED and run.started_at is not None
    assert run.started_at >= run.start_at
    assert players_running() == []

    cut = run_at(time.time() + 0.5)
    launch(cut, "loa-1", cache, player, lambda: None)
    deadline = time.monotonic() + 5
    while not players_running() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not cut.cut(CutReason.STOPPED)  # not started: no audio was cut
    assert cut.thread is not None
    cut.thread.join(5)
    assert cut.outcome is Outcome.CUT and not cut.started
    assert players_running() == []


def test_a_run_whose_file_is_corrupt_fails_before_its_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00" * 4000)
    run = run_at(time.time() + 5)
    launch(run, "loa-1", _Cache(bad), Mpg123Player(ARGV), lambda: None)  # type: ignore[arg-type]
    assert run.thread is not None
    run.thread.join(5)
    assert run.outcome is Outcome.FAILED and not run.started
    assert "Error reading the stream" in run.detail
    assert players_running() == []


def test_the_mpg123_kind_in_config_and_factory(tmp_path: Path, kit) -> None:
    key = protocol.generate_private_key()
    data = kit.receiver_config(tmp_path, "loa-pi-01", ["thon-1"], 1883, "pw", key)
    data["player"] = {"kind": "mpg123", "remote_argv": ["mpg123", "-R", "-o", "alsa"]}
    config = ReceiverConfig.from_dict(data)
    assert config.player.remote_argv == ["mpg123", "-R", "-o", "alsa"]
    player = make_player(config.player, "loa-pi-01")
    assert isinstance(player, Mpg123Player)
    assert player.argv == ["mpg123", "-R", "-o", "alsa"]
    assert PlayerSettings(kind="mpg123").remote_argv == ["mpg123", "-R"]
