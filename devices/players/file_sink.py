"""The file sink: plays nothing, writes what it would have played.

It copies the file into a folder and appends a JSON line to `played.jsonl`, so the demo, the
simulated fleets and the tests can see exactly what a loudspeaker would have played, and when.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devices.http_get import iter_body
from devices.players import PlayContext, PlayerError, Stoppable
from devices.players.relay import RELAY_CHUNK, RELAY_MAX_BYTES_PER_S, copy_for, open_stream
from devices.starts import START_WINDOW
from wire.files import atomic_output
from wire.mp3 import estimated_duration_s

PLAYED_LOG = "played.jsonl"
# One lock per process for appends: several simulated receivers may share a sink folder.
_APPEND_LOCK = threading.Lock()


class FileSinkPlayer(Stoppable):
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
        if not self._begin(context):
            return
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
                context.cancel.wait(max(0.0, began + _duration_s(Path(path)) - time.monotonic()))
            self._log(context, started, content="media", sha256=context.sha256, file=name)
        except OSError as exc:
            raise PlayerError(f"file sink: {exc.strerror or exc}") from exc
        finally:
            self._end()

    def relay(self, url: str, duration_s: float, context: PlayContext) -> None:
        """Read the stream for `duration_s` into a file (at most `RELAY_MAX_BYTES_PER_S` per
        second of it) and log how long it really ran; a stream that cannot be opened fails."""
        if not self._begin(context):
            return
        try:
            started = datetime.now(UTC)
            began = time.monotonic()
            context.on_start()
            name = f"{started.strftime('%Y%m%dT%H%M%S.%fZ')}-b{context.broadcast_id}-relay.mp3"
            target = self.directory / name
            limit = int(RELAY_MAX_BYTES_PER_S * (duration_s + 1))
            with (
                open_stream(url) as response,
                atomic_output(target) as output,
                output.path.open("wb") as sink,
            ):
                chunks = iter_body(response, url, RELAY_CHUNK, live=True)
                received = copy_for(chunks, sink, began + duration_s, limit, context.cancel)
            seconds = round(time.monotonic() - began, 3)
            self._log(
                context,
                started,
                content="relay",
                url=url,
                seconds=seconds,
                bytes=received,
                file=name,
            )
        except OSError as exc:
            raise PlayerError(f"file sink: {exc.strerror or exc}") from exc
        finally:
            self._end()

    def _begin(self, context: PlayContext) -> bool:
        """Take the play (False: it was cancelled before it began)."""
        with self._lock:
            if context.cancel.is_set():
                return False
            self._cancel = context.cancel
            return True

    def _end(self) -> None:
        with self._lock:
            self._cancel = None

    def _log(self, context: PlayContext, started: datetime, **fields: Any) -> None:
        """One line of the played log, finished now."""
        line = {**self._line(context, started, datetime.now(UTC)), **fields}
        _append_line(self.log_path, json.dumps(line, ensure_ascii=False))

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


DEFAULT_BITRATE_BPS = 32_000  # what audio.render_announcement produces


# --- file helpers ------------------------------------------------------------------------------


def _atomic_copy(source: Path, target: Path) -> None:
    """Copy via a temporary name so a watcher never sees a half-written file."""
    with atomic_output(target) as output:
        shutil.copyfile(source, output.path)


def _duration_s(path: Path) -> float:
    """About as long as the loudspeaker would take (32 kbps, Loa's renders, if unknown)."""
    return estimated_duration_s(path, DEFAULT_BITRATE_BPS)


def _append_line(path: Path, line: str) -> None:
    data = (line + "\n").encode("utf-8")
    with _APPEND_LOCK:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
