"""Player back-ends: what the receiver does with a verified MP3 or a live relay.

This module is the small interface `devices.playback` needs (`Player`, `Preparing`,
`PlayContext`, `PlayerError`) and `make_player`, which builds the back-end that `player.kind`
names; each back-end is a module of its own: `file_sink` (plays nothing, logs what it would
play: the demo, the simulated fleets and the tests), `command` (an external program such as
aplay or ffplay) and `mpg123` (`mpg123 -R`, ready before the start). `relay` reads live streams,
`mp3` estimates how long a file sounds.

`play()` (a file) and `relay()` (a live HTTP stream of the provincial or national radio, for a
given duration) block until the sound is done or stopped. Stopping is cooperative and race-free:
setting `PlayContext.cancel` ends the play (the players watch it), so a stop that arrives a
moment before playback starts still wins; `stop()` sets the cancel of the play in progress. A
stopped play returns normally; the caller looks at `context.cancel` to tell it apart. A player
calls `PlayContext.on_start` as soon as the sound is launched, and does its bookkeeping after
that, never before (`devices.starts`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from wire.config import ConfigError, PlayerSettings


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


class Stoppable:
    """Tracks the cancel event of the play in progress so `stop()` can reach it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel: threading.Event | None = None

    def stop(self) -> None:
        with self._lock:
            if self._cancel is not None:
                self._cancel.set()


def make_player(
    settings: PlayerSettings, device_id: str, default_dir: Path | None = None
) -> Player:
    """Build the configured player; a file sink without `dir` writes under `default_dir`.

    A back-end is imported here, when it is built, since the back-ends import this interface."""
    if settings.kind == "file":
        from devices.players.file_sink import FileSinkPlayer

        directory = Path(settings.dir) if settings.dir else default_dir
        if directory is None:
            raise ConfigError("field 'player.dir' is required for the file player")
        return FileSinkPlayer(directory, device_id, realtime=settings.realtime)
    if settings.kind == "command":
        from devices.players.command import CommandPlayer

        if not settings.argv:
            raise ConfigError("field 'player.argv' must not be empty for the command player")
        return CommandPlayer(settings.argv, settings.relay_argv)
    if settings.kind == "mpg123":
        from devices.players.mpg123 import Mpg123Player

        if not settings.remote_argv:
            raise ConfigError("field 'player.remote_argv' must not be empty for the mpg123 player")
        return Mpg123Player(settings.remote_argv, settings.relay_argv)
    raise ConfigError(
        f"field 'player.kind' must be 'file', 'command' or 'mpg123', not {settings.kind!r}"
    )
