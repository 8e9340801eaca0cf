"""Player back-ends: what the receiver does with a verified MP3 or a live relay.

`CommandPlayer` runs an external program (mpg123, aplay, ffplay) on the Pi. `FileSinkPlayer`
plays nothing: it copies the file into a folder and appends a JSON line to `played.jsonl`, so the
demo and the tests can see exactly what a loudspeaker would have played, and when.

`play()` (a file) and `relay()` (a live HTTP stream of the provincial or national radio, for a
given duration) block until the sound is done or stopped. Stopping is cooperative and race-free:
setting `PlayContext.cancel` ends the play (the players watch it), so a stop that arrives a
moment before playback starts still wins; `stop()` sets the cancel of the play in progress. A
stopped play returns normally; the caller looks at `context.cancel` to tell it apart. A player
calls `PlayContext.on_start` as soon as the sound is launched, and does its bookkeeping after
that, never before (`devices.starts`).

`Mpg123Player` also implements `Preparing`: before the start it has `mpg123 -R` running with the
file loaded, paused and its first frame parsed, so the start is one write to that process, not a
fork/exec, start-up and file open after the moment all the zone's receivers start together.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from devices.http_get import HttpError, host_of, iter_body, open_url
from devices.starts import START_WINDOW
from wire.config import (
    DEFAULT_PLAYER_ARGV,
    DEFAULT_RELAY_ARGV,
    ConfigError,
    PlayerSettings,
)

_LOGGER = logging.getLogger(__name__)

PLAYED_LOG = "played.jsonl"
DEFAULT_BITRATE_BPS = 32_000  # what audio.render_announcement produces
_TERMINATE_GRACE_S = 3.0
_POLL_S = 0.05
RELAY_CONNECT_TIMEOUT_S = 10.0
RELAY_MAX_BYTES_PER_S = 64 * 1024  # 512 kbps: above any radio stream; bounds the sink's file
_RELAY_CHUNK = 4096
PREPARE_TIMEOUT_S = 5.0  # start mpg123, load and parse the first frame: far less, even on a Pi
_READER_JOIN_S = 1.0
_QUIT_GRACE_S = 1.0
# One lock per process for appends: several simulated receivers may share a sink folder.
_APPEND_LOCK = threading.Lock()


class PlayerError(Exception):
    """Playback failed; the message is short enough for a DeviceEvent detail."""


def _nothing() -> None:
    """Nobody waits for this play's start."""


@dataclass(frozen=True)
class PlayContext:
    """Who and what a play is for; `cancel` is set when the play must stop; `on_start` is
    called once the sound is launched (the run's start stops counting as imminent)."""

    device_id: str
    command_id: str
    broadcast_id: int | None
    sha256: str
    priority: str = "normal"
    repeat_index: int = 0
    title: str = ""
    item_id: str = ""
    cancel: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)
    on_start: Callable[[], None] = field(default=_nothing, compare=False, repr=False)


class Player(Protocol):
    def play(self, path: Path, context: PlayContext) -> None:
        """Block until `path` has been played or the play was stopped; raise PlayerError."""

    def relay(self, url: str, duration_s: float, context: PlayContext) -> None:
        """Play the live stream `url` for `duration_s` (or until stopped); raise PlayerError."""

    def stop(self) -> None:
        """Stop the current play (if any) from another thread."""


@runtime_checkable
class Preparing(Protocol):
    """A player that can get a file ready ahead of its start (`devices.playback.execute`)."""

    def prepare(self, path: Path, context: PlayContext) -> None:
        """Ready `path` so that `play(path, context)` only has to start it; raise PlayerError."""

    def release(self, context: PlayContext) -> None:
        """Drop what `prepare` readied for `context` and was not played (cut, failed)."""


class _Stoppable:
    """Tracks the cancel event of the play in progress so `stop()` can reach it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel: threading.Event | None = None

    def stop(self) -> None:
        with self._lock:
            if self._cancel is not None:
                self._cancel.set()


class FileSinkPlayer(_Stoppable):
    """Writes what it would play: a copy of the file plus one JSON line per play.

    With `realtime`, a play lasts as long as the MP3 would sound, so `playing` states and stop
    commands behave as on a real loudspeaker; without it a play is instantaneous (tests).
    """

    def __init__(self, directory: Path, device_id: str = "", realtime: bool = False) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.device_id = device_id
        self.realtime = realtime
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def log_path(self) -> Path:
        return self.directory / PLAYED_LOG

    def play(self, path: Path, context: PlayContext) -> None:
        with self._lock:
            if context.cancel.is_set():
                return
            self._cancel = context.cancel
        try:
            started = datetime.now(UTC)  # the sound starts here
            began = time.monotonic()
            context.on_start()
            START_WINDOW.quiet()  # the copy and the log line are bookkeeping: starts go first
            name = (
                f"{started.strftime('%Y%m%dT%H%M%S.%fZ')}-b{context.broadcast_id}"
                f"-{context.sha256[:12]}.mp3"
            )
            target = self.directory / name
            _atomic_copy(Path(path), target)
            if self.realtime:
                context.cancel.wait(max(0.0, began + mp3_duration_s(Path(path)) - time.monotonic()))
            finished = datetime.now(UTC)
            line = {
                **self._line(context, started, finished),
                "content": "media",
                "sha256": context.sha256,
                "file": name,
            }
            _append_line(self.log_path, json.dumps(line, ensure_ascii=False))
        except OSError as exc:
            raise PlayerError(f"file sink: {exc.strerror or exc}") from exc
        finally:
            with self._lock:
                self._cancel = None

    def relay(self, url: str, duration_s: float, context: PlayContext) -> None:
        """Read the stream for `duration_s` into a file (at most `RELAY_MAX_BYTES_PER_S` per
        second of it) and log how long it really ran; a stream that cannot be opened fails."""
        with self._lock:
            if context.cancel.is_set():
                return
            self._cancel = context.cancel
        try:
            started = datetime.now(UTC)
            began = time.monotonic()
            context.on_start()
            name = f"{started.strftime('%Y%m%dT%H%M%S.%fZ')}-b{context.broadcast_id}-relay.mp3"
            target = self.directory / name
            limit = int(RELAY_MAX_BYTES_PER_S * (duration_s + 1))
            with _open_stream(url) as response, _atomic_writer(target) as sink:
                chunks = iter_body(response, url, _RELAY_CHUNK, live=True)
                received = _copy_for(chunks, sink, began + duration_s, limit, context.cancel)
            seconds = time.monotonic() - began
            finished = datetime.now(UTC)
            line = {
                **self._line(context, started, finished),
                "content": "relay",
                "url": url,
                "seconds": round(seconds, 3),
                "bytes": received,
                "file": name,
            }
            _append_line(self.log_path, json.dumps(line, ensure_ascii=False))
        except OSError as exc:
            raise PlayerError(f"file sink: {exc.strerror or exc}") from exc
        finally:
            with self._lock:
                self._cancel = None

    def _line(
        self, context: PlayContext, started: datetime, finished: datetime
    ) -> dict[str, object]:
        return {
            "device_id": context.device_id or self.device_id,
            "broadcast_id": context.broadcast_id,
            "command_id": context.command_id,
            "item_id": context.item_id,
            "priority": str(context.priority),
            "repeat_index": context.repeat_index,
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat(),
            "stopped": context.cancel.is_set(),
        }


class CommandPlayer(_Stoppable):
    """Runs `argv` with `{file}` replaced by the MP3's path (`relay_argv` with `{url}` for a
    relay); no shell, so no quoting surprises. The process is terminated when the play's
    `cancel` is set, and a relay's process after its duration."""

    def __init__(self, argv: list[str], relay_argv: list[str] | None = None) -> None:
        super().__init__()
        if not argv:
            raise ValueError("player command is empty")
        self.argv = list(argv)
        self.relay_argv = list(relay_argv or DEFAULT_RELAY_ARGV)
        self._process: subprocess.Popen[bytes] | None = None

    def play(self, path: Path, context: PlayContext) -> None:
        argv = [arg.replace("{file}", str(path)) for arg in self.argv]
        self._run(argv, context, limit_s=None)

    def relay(self, url: str, duration_s: float, context: PlayContext) -> None:
        """The stream plays until `duration_s` is over; a player that gives up early (cannot
        connect) fails with its last error line."""
        argv = [arg.replace("{url}", url) for arg in self.relay_argv]
        began = time.monotonic()
        self._run(argv, context, limit_s=duration_s)
        _LOGGER.info("relay of %s ran %.1f s", host_of(url), time.monotonic() - began)

    def _run(self, argv: list[str], context: PlayContext, limit_s: float | None) -> None:
        with tempfile.TemporaryFile() as errors:
            with self._lock:
                if context.cancel.is_set():
                    return
                try:
                    process = subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors
                    )
                except FileNotFoundError as exc:
                    raise PlayerError(f"player command not found: {argv[0]}") from exc
                except OSError as exc:
                    raise PlayerError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
                self._process = process
                self._cancel = context.cancel
            context.on_start()
            ended_by_us = False
            try:
                deadline = None if limit_s is None else time.monotonic() + limit_s
                while True:
                    try:
                        returncode = process.wait(timeout=_POLL_S)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    if context.cancel.is_set() or (
                        deadline is not None and time.monotonic() >= deadline
                    ):
                        ended_by_us = True
                        _terminate(process)
                        returncode = process.returncode
                        break
            finally:
                with self._lock:
                    self._process = None
                    self._cancel = None
            if ended_by_us or context.cancel.is_set() or returncode == 0:
                return
            errors.seek(0)
            tail = errors.read()[-2000:].decode("utf-8", "replace").strip().splitlines()
            reason = f": {tail[-1][:160]}" if tail else ""
            raise PlayerError(f"{Path(argv[0]).name} exited with status {returncode}{reason}")

    def stop(self) -> None:
        with self._lock:
            process = self._process
            if self._cancel is not None:
                self._cancel.set()
        if process is not None and process.poll() is None:
            _terminate(process)


class _Remote:
    """One `mpg123 -R` process and what it has said, read by a thread of its own: stdout, with
    stderr merged (mpg123 reports some errors only there)."""

    def __init__(self, argv: list[str]) -> None:
        self.program = Path(argv[0]).name
        try:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except FileNotFoundError as exc:
            raise PlayerError(f"player command not found: {argv[0]}") from exc
        except OSError as exc:
            raise PlayerError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
        self._changed = threading.Condition()
        self.status = ""  # the last `@P`: 0 stopped, 1 paused, 2 playing, 3 end of track
        self.loaded = False  # `@FORMAT` answered: the file is open and its first frame parsed
        self.playing = False
        self.finished = False
        self.error = ""  # the first `@E`
        self.last_line = ""  # the last line that is not a response (stderr)
        self.gone = False  # its output ended: the process exited
        self._reader = threading.Thread(target=self._read, name="loa-mpg123", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for raw in stdout:
            line = raw.decode("utf-8", "replace").strip()
            with self._changed:
                if line.startswith("@P "):
                    self.status = line[3:].strip()
                    self.playing = self.playing or self.status == "2"
                    self.finished = self.playing and self.status in ("0", "3")
                elif line.startswith("@FORMAT"):
                    self.loaded = True
                elif line.startswith("@E ") and not self.error:
                    self.error = line[3:].strip()
                elif line and not line.startswith("@"):
                    # "main: [src/mpg123.c:…] error: out123 error 3: …": keep what it says
                    self.last_line = line.rsplit("] error: ", 1)[-1]
                self._changed.notify_all()
        with self._changed:
            self.gone = True
            self._changed.notify_all()

    def send(self, command: str) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(command.encode("utf-8") + b"\n")
            stdin.flush()
        except OSError as exc:
            raise PlayerError(f"{self.program} exited: {self.reason()}") from exc

    def wait_for(
        self, done: Callable[[], bool], cancel: threading.Event, timeout: float | None
    ) -> bool:
        """Wait until `done()` (checked under the lock); False on `cancel` or the timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not done():
                left = _POLL_S if deadline is None else deadline - time.monotonic()
                if left <= 0 or cancel.is_set():
                    return False
                self._changed.wait(min(left, _POLL_S))
        return True

    def reason(self) -> str:
        with self._changed:
            if self.error or self.last_line:
                return (self.error or self.last_line)[:160]
        code = self.process.poll()
        return "no answer" if code is None else f"status {code}"

    def close(self) -> None:
        """End the process (nothing if it already ended) and its reader; never raises. `QUIT`
        and the end of its input, not SIGTERM: mpg123 -R ignores SIGTERM while paused."""
        process = self.process
        if process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert process.stdin is not None
                process.stdin.write(b"QUIT\n")
                process.stdin.close()
            _wait_or_kill(process, _QUIT_GRACE_S, "did not quit")
        self._reader.join(_READER_JOIN_S)
        for pipe in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


class Mpg123Player(_Stoppable):
    """Plays with `argv` (`mpg123 -R` and output options): `prepare` starts the process with the
    file loaded paused, the start only unpauses it. A play with nothing prepared (a repeat)
    loads first. One process per play: a stopped or failed one leaves nothing behind. Relays
    run `relay_argv` as `CommandPlayer` does (a stream has no exact start)."""

    def __init__(self, argv: list[str], relay_argv: list[str] | None = None) -> None:
        super().__init__()
        if not argv:
            raise ValueError("player command is empty")
        self.argv = list(argv)
        self._relay = CommandPlayer(list(DEFAULT_PLAYER_ARGV), relay_argv)
        self._prepared: dict[threading.Event, tuple[Path, _Remote]] = {}  # by the run's cancel
        self._remote: _Remote | None = None

    def prepare(self, path: Path, context: PlayContext) -> None:
        remote = self._load(path, context.cancel)
        if remote is None:
            return
        with self._lock:
            old = self._prepared.pop(context.cancel, None)
            self._prepared[context.cancel] = (path, remote)
        if old is not None:
            old[1].close()

    def release(self, context: PlayContext) -> None:
        with self._lock:
            ready = self._prepared.pop(context.cancel, None)
        if ready is not None:
            ready[1].close()

    def play(self, path: Path, context: PlayContext) -> None:
        with self._lock:
            ready = self._prepared.pop(context.cancel, None)
        remote = ready[1] if ready is not None and ready[0] == path else None
        if ready is not None and remote is None:
            ready[1].close()
        if remote is None:
            remote = self._load(path, context.cancel)
            if remote is None:
                return
        try:
            with self._lock:
                if context.cancel.is_set():
                    return
                self._cancel, self._remote = context.cancel, remote
            remote.send("PAUSE")  # paused → playing: the sound starts
            context.on_start()
            remote.wait_for(lambda: remote.finished or remote.gone, context.cancel, None)
            if context.cancel.is_set() or remote.finished:
                return
            raise PlayerError(f"{remote.program} ended early: {remote.reason()}")
        finally:
            with self._lock:
                self._cancel = self._remote = None
            remote.close()

    def relay(self, url: str, duration_s: float, context: PlayContext) -> None:
        self._relay.relay(url, duration_s, context)

    def stop(self) -> None:
        with self._lock:
            remote = self._remote
            if self._cancel is not None:
                self._cancel.set()
        self._relay.stop()
        if remote is not None:
            remote.close()

    def _load(self, path: Path, cancel: threading.Event) -> _Remote | None:
        """A process with `path` loaded paused and its first frame parsed; None if `cancel`."""
        remote = _Remote(self.argv)
        try:
            remote.send("SILENCE")  # no progress lines
            remote.send(f"LOADPAUSED {path}")
            remote.send("FORMAT")  # answered once the first frame is parsed, @E if none is
            ready = remote.wait_for(
                lambda: remote.loaded or bool(remote.error) or remote.gone,
                cancel,
                PREPARE_TIMEOUT_S,
            )
            if cancel.is_set():
                remote.close()
                return None
            if not ready:
                raise PlayerError(f"{remote.program} not ready after {PREPARE_TIMEOUT_S:.0f} s")
            if not remote.loaded:
                raise PlayerError(f"{remote.program} cannot play {path.name}: {remote.reason()}")
        except BaseException:
            remote.close()
            raise
        return remote


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    _wait_or_kill(process, _TERMINATE_GRACE_S, "ignored SIGTERM")


def _wait_or_kill(process: subprocess.Popen[bytes], grace_s: float, why: str) -> None:
    """Give a player asked to end `grace_s` to do so, then kill it: a stop always stops."""
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _LOGGER.warning("player pid %s %s; killing it", process.pid, why)
        process.kill()
        process.wait(timeout=_TERMINATE_GRACE_S)


def make_player(
    settings: PlayerSettings, device_id: str, default_dir: Path | None = None
) -> Player:
    """Build the configured player; a file sink without `dir` writes under `default_dir`."""
    if settings.kind == "file":
        directory = Path(settings.dir) if settings.dir else default_dir
        if directory is None:
            raise ConfigError("field 'player.dir' is required for the file player")
        return FileSinkPlayer(directory, device_id, realtime=settings.realtime)
    if settings.kind == "command":
        if not settings.argv:
            raise ConfigError("field 'player.argv' must not be empty for the command player")
        return CommandPlayer(settings.argv, settings.relay_argv)
    if settings.kind == "mpg123":
        if not settings.remote_argv:
            raise ConfigError("field 'player.remote_argv' must not be empty for the mpg123 player")
        return Mpg123Player(settings.remote_argv, settings.relay_argv)
    raise ConfigError(
        f"field 'player.kind' must be 'file', 'command' or 'mpg123', not {settings.kind!r}"
    )


# --- relay streams ------------------------------------------------------------------------------


@contextlib.contextmanager
def _open_stream(url: str) -> Iterator[http.client.HTTPResponse]:
    """The live stream's response, or a PlayerError naming the host and why it failed."""
    try:
        response = open_url(url, RELAY_CONNECT_TIMEOUT_S)
    except HttpError as exc:
        if exc.status is not None:
            raise PlayerError(f"relay: {exc}") from exc
        raise PlayerError(f"relay: cannot connect to {exc}") from exc
    with response:
        yield response


@contextlib.contextmanager
def _atomic_writer(target: Path) -> Iterator[IO[bytes]]:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _copy_for(
    chunks: Iterator[bytes],
    sink: IO[bytes],
    until: float,
    limit: int,
    cancel: threading.Event,
) -> int:
    """Copy the stream into `sink` until the monotonic time `until` (or `cancel`); stop reading
    at `limit` bytes but still take the whole duration, as a loudspeaker would."""
    received = 0
    try:
        for chunk in chunks:
            if cancel.is_set() or time.monotonic() >= until:
                break
            room = limit - received
            sink.write(chunk[:room])
            received += min(len(chunk), room)
            if received >= limit:
                cancel.wait(max(0.0, until - time.monotonic()))
                break
    except HttpError as exc:
        _LOGGER.warning("relay stream ended early: %s", exc.reason)  # stalled or broke
    return received


# --- MP3 duration -------------------------------------------------------------------------------

# Bitrates in kbps for Layer III: MPEG-1, and MPEG-2/2.5 (index 0 = free, 15 = bad).
_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)
_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0)


def mp3_duration_s(path: Path) -> float:
    """Duration from the first frame's bitrate (constant bitrate assumed); 32 kbps fallback.

    Good enough for a file sink that only needs to take about as long as the loudspeaker would.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
    offset = 0
    if head[:3] == b"ID3" and len(head) >= 10:
        tag_size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        offset = 10 + tag_size
    bitrate = _first_frame_bitrate(head, offset) or DEFAULT_BITRATE_BPS
    return max(0, size - offset) * 8 / bitrate


def _first_frame_bitrate(data: bytes, start: int) -> int | None:
    for index in range(start, len(data) - 2):
        if data[index] != 0xFF or (data[index + 1] & 0xE0) != 0xE0:
            continue
        version = (data[index + 1] >> 3) & 0x03  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
        layer = (data[index + 1] >> 1) & 0x03  # 1 = Layer III
        bitrate_index = data[index + 2] >> 4
        if version == 1 or layer != 1 or bitrate_index in (0, 15):
            continue
        table = _BITRATES_V1 if version == 3 else _BITRATES_V2
        return table[bitrate_index] * 1000
    return None


# --- file helpers ------------------------------------------------------------------------------


def _atomic_copy(source: Path, target: Path) -> None:
    """Copy via a temporary name so a watcher never sees a half-written file."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp_name)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _append_line(path: Path, line: str) -> None:
    data = (line + "\n").encode("utf-8")
    with _APPEND_LOCK:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
