"""The command player: runs an external program (aplay, ffplay, mpg123 without -R) per play.

Also the process helpers the mpg123 player shares: a poll interval and a stop that always stops.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import time
from pathlib import Path

from devices.http_get import host_of
from devices.players import PlayContext, PlayerError, Stoppable
from wire.config import DEFAULT_RELAY_ARGV

_LOGGER = logging.getLogger(__name__)

_TERMINATE_GRACE_S = 3.0
POLL_S = 0.05


class CommandPlayer(Stoppable):
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
                        returncode = process.wait(timeout=POLL_S)
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


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    wait_or_kill(process, _TERMINATE_GRACE_S, "ignored SIGTERM")


def wait_or_kill(process: subprocess.Popen[bytes], grace_s: float, why: str) -> None:
    """Give a player asked to end `grace_s` to do so, then kill it: a stop always stops."""
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _LOGGER.warning("player pid %s %s; killing it", process.pid, why)
        process.kill()
        process.wait(timeout=_TERMINATE_GRACE_S)
