"""Player back-ends with real files and real processes."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from devices.players import PlayContext, PlayerError, make_player
from devices.players.command import CommandPlayer
from devices.players.file_sink import FileSinkPlayer
from wire.config import ConfigError, PlayerSettings

SHA = "ab" * 32


def context(**overrides: object) -> PlayContext:
    values: dict[str, object] = {
        "device_id": "loa-1",
        "command_id": "c1",
        "broadcast_id": 42,
        "sha256": SHA,
    }
    values.update(overrides)
    return PlayContext(**values)  # type: ignore[arg-type]


def test_file_sink_copies_and_logs(tmp_path: Path, kit) -> None:
    source = tmp_path / "in.mp3"
    source.write_bytes(kit.fake_mp3(0.2))
    player = FileSinkPlayer(tmp_path / "played", "loa-1")
    player.play(source, context(priority="emergency", repeat_index=1))

    lines = kit.played_lines(tmp_path / "played")
    assert len(lines) == 1
    line = lines[0]
    assert {
        k: line[k]
        for k in ("device_id", "broadcast_id", "command_id", "sha256", "priority", "repeat_index")
    } == {
        "device_id": "loa-1",
        "broadcast_id": 42,
        "command_id": "c1",
        "sha256": SHA,
        "priority": "emergency",
        "repeat_index": 1,
    }
    assert (line["content"], line["item_id"]) == ("media", "")
    assert line["started_at"] <= line["finished_at"]
    assert line["file"].endswith(f"-b42-{SHA[:12]}.mp3")
    assert (tmp_path / "played" / line["file"]).read_bytes() == source.read_bytes()
    assert not [p for p in (tmp_path / "played").iterdir() if p.name.startswith(".")]


def test_file_sink_realtime_takes_the_duration_and_stops(tmp_path: Path, kit) -> None:
    source = tmp_path / "in.mp3"
    source.write_bytes(kit.fake_mp3(0.4))
    player = FileSinkPlayer(tmp_path / "played", "loa-1", realtime=True)
    began = time.monotonic()
    player.play(source, context())
    assert 0.3 < time.monotonic() - began < 3.0

    long_source = tmp_path / "long.mp3"
    long_source.write_bytes(kit.fake_mp3(30))
    thread = threading.Thread(target=player.play, args=(long_source, context(command_id="c2")))
    thread.start()
    kit.wait_until(lambda: len(list((tmp_path / "played").glob("*.mp3"))) == 2)
    player.stop()
    thread.join(5)
    assert not thread.is_alive()
    lines = kit.played_lines(tmp_path / "played")
    assert [line["stopped"] for line in lines] == [False, True]


def test_cancelled_context_plays_nothing(tmp_path: Path, kit) -> None:
    source = tmp_path / "in.mp3"
    source.write_bytes(kit.fake_mp3(0.1))
    player = FileSinkPlayer(tmp_path / "played")
    ctx = context()
    ctx.cancel.set()
    player.play(source, ctx)
    assert kit.played_lines(tmp_path / "played") == []


def test_command_player_substitutes_file(tmp_path: Path) -> None:
    source = tmp_path / "in put.mp3"
    source.write_bytes(b"x")
    marker = tmp_path / "marker"
    script = "import sys, pathlib; pathlib.Path(sys.argv[2]).write_text(sys.argv[1])"
    player = CommandPlayer([sys.executable, "-c", script, "{file}", str(marker)])
    player.play(source, context())
    assert marker.read_text() == str(source)


def test_command_player_stop_terminates(tmp_path: Path, kit) -> None:
    marker = tmp_path / "running"
    player = CommandPlayer(["sh", "-c", 'touch "$1"; exec sleep 30', "sh", str(marker)])
    errors: list[BaseException] = []

    def run() -> None:
        try:
            player.play(tmp_path / "x.mp3", context())
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=run)
    began = time.monotonic()
    thread.start()
    kit.wait_until(marker.exists)  # the player really runs `sleep` now
    player.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - began < 5
    assert errors == []  # a stopped play is not a failure


def test_command_player_missing_binary(tmp_path: Path) -> None:
    player = CommandPlayer(["loa-no-such-player-binary", "{file}"])
    with pytest.raises(PlayerError, match="player command not found: loa-no-such-player-binary"):
        player.play(tmp_path / "x.mp3", context())


def test_command_player_failure_reports_stderr(tmp_path: Path) -> None:
    script = "import sys; print('cannot open audio device', file=sys.stderr); sys.exit(3)"
    player = CommandPlayer([sys.executable, "-c", script, "{file}"])
    with pytest.raises(PlayerError, match="status 3: cannot open audio device"):
        player.play(tmp_path / "x.mp3", context())


def test_make_player(tmp_path: Path) -> None:
    sink = make_player(PlayerSettings(kind="file", realtime=True), "loa-1", tmp_path / "d")
    assert isinstance(sink, FileSinkPlayer)
    assert sink.directory == tmp_path / "d"
    assert sink.realtime
    command = make_player(
        PlayerSettings(kind="command", argv=["aplay", "{file}"], relay_argv=["ffplay", "{url}"]),
        "loa-1",
    )
    assert isinstance(command, CommandPlayer)
    assert command.relay_argv == ["ffplay", "{url}"]
    with pytest.raises(ConfigError, match=r"player\.dir"):
        make_player(PlayerSettings(kind="file"), "loa-1")
    with pytest.raises(ConfigError, match=r"player\.kind"):
        make_player(PlayerSettings(kind="radio"), "loa-1")


def test_shared_sink_lines_do_not_interleave(tmp_path: Path, kit) -> None:
    source = tmp_path / "in.mp3"
    source.write_bytes(kit.fake_mp3(0.05))
    players = [FileSinkPlayer(tmp_path / "shared", f"loa-{i}") for i in range(4)]
    threads = [
        threading.Thread(
            target=lambda p=p: [p.play(source, context(device_id=p.device_id)) for _ in range(10)]
        )
        for p in players
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    text = (tmp_path / "shared" / "played.jsonl").read_text()
    assert len([json.loads(line) for line in text.splitlines()]) == 40


FAKE_MPG123 = """
import sys, time, urllib.request, pathlib
url, marker = sys.argv[1], pathlib.Path(sys.argv[2])
try:
    stream = urllib.request.urlopen(url, timeout=5)
except OSError as exc:
    print(f"mpg123: cannot open {url}: {exc}", file=sys.stderr)
    sys.exit(1)
marker.write_text(url)
while stream.read(256):
    pass
"""


def test_command_player_relay_stops_after_the_duration(tmp_path: Path, media_server, kit) -> None:
    media_server.live["live/command-relay.mp3"] = (kit.tone_mp3(1.0, 700), 4000)
    marker = tmp_path / "listening"
    player = CommandPlayer(["unused"], [sys.executable, "-c", FAKE_MPG123, "{url}", str(marker)])
    began = time.monotonic()
    player.relay(media_server.url("live/command-relay.mp3"), 1.0, context())
    took = time.monotonic() - began
    assert marker.read_text() == media_server.url("live/command-relay.mp3")
    assert 1.0 <= took < 3.0

    dead = f"http://127.0.0.1:{kit.unused_port()}/live"
    with pytest.raises(PlayerError, match=r"exited with status 1: mpg123: cannot open"):
        player.relay(dead, 5.0, context())


def test_file_sink_relay_is_bounded_and_fails_clearly(tmp_path: Path, media_server, kit) -> None:
    media_server.live["live/fast.mp3"] = (kit.tone_mp3(1.0, 710), 400_000)  # not paced as live
    player = FileSinkPlayer(tmp_path / "played", "loa-1")
    began = time.monotonic()
    player.relay(media_server.url("live/fast.mp3"), 0.5, context(item_id="radio"))
    assert 0.5 <= time.monotonic() - began < 2.0
    [line] = kit.played_lines(tmp_path / "played")
    assert (line["content"], line["item_id"]) == ("relay", "radio")
    assert line["bytes"] <= int(64 * 1024 * 1.5)  # at most 64 KiB per second of relay
    assert 0.5 <= line["seconds"] < 2.0

    with pytest.raises(PlayerError, match=r"relay: 127\.0\.0\.1:\d+ answered HTTP 404"):
        player.relay(media_server.url("live/missing.mp3"), 0.5, context())
    ctx = context()
    stopper = threading.Timer(0.3, ctx.cancel.set)
    stopper.start()
    began = time.monotonic()
    player.relay(media_server.url("live/fast.mp3"), 30, ctx)
    assert time.monotonic() - began < 2.0
    assert kit.played_lines(tmp_path / "played")[-1]["stopped"] is True


def test_command_player_stops_when_its_play_is_cancelled(tmp_path: Path, kit) -> None:
    marker = tmp_path / "running"
    player = CommandPlayer(["sh", "-c", 'touch "$1"; exec sleep 30', "sh", str(marker)])
    ctx = context()
    thread = threading.Thread(target=player.play, args=(tmp_path / "x.mp3", ctx))
    thread.start()
    kit.wait_until(marker.exists)
    ctx.cancel.set()  # what the scheduler does to cut an item: no stop() call needed
    thread.join(5)
    assert not thread.is_alive()
