"""The mpg123 player, which also implements `Preparing`.

Before the start it has `mpg123 -R` running with the file loaded, paused and its first frame
parsed, so the start is one write to that process, not a fork/exec, start-up and file open after
the moment all the zone's receivers start together.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from devices.players import PlayContext, PlayerError, Stoppable
from devices.players.command import POLL_S, CommandPlayer, wait_or_kill
from wire.config import DEFAULT_PLAYER_ARGV

PREPARE_TIMEOUT_S = 5.0  # start mpg123, load and parse the first frame: far less, even on a Pi
_READER_JOIN_S = 1.0
_QUIT_GRACE_S = 1.0


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
                left = POLL_S if deadline is None else deadline - time.monotonic()
                if left <= 0 or cancel.is_set():
                    return False
                self._changed.wait(min(left, POLL_S))
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
            wait_or_kill(process, _QUIT_GRACE_S, "did not quit")
        self._reader.join(_READER_JOIN_S)
        for pipe in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


class Mpg123Player(Stoppable):
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
