"""A live feed's encoder: a microphone's audio as it arrives (Opus in WebM or Ogg from a
browser's MediaRecorder, or any container ffmpeg reads from a pipe) sent on as the broadcast
format to a stream server, and written to a file as it goes (the live broadcast's recording).

One ffmpeg process per feed reads its standard input; `write` hands it what came, `close` ends
the input and waits for ffmpeg to finish both outputs. It knows nothing of broadcasts: the
caller gives the stream's URL (an `icecast://` source URL) and the recording's path.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
from pathlib import Path

from audio.errors import AudioError
from audio.ffmpeg import ffmpeg_exe, log_errors

_LOGGER = logging.getLogger(__name__)

# What the receivers play: MP3 as Loa's renders, mono; 48 kbps keeps a voice clear live.
LIVE_BITRATE = "48k"
LIVE_SAMPLE_RATE = "22050"
CLOSE_TIMEOUT_S = 15.0
_LOG_LIMIT = 64 * 1024


class LiveEncoder:
    """ffmpeg reading a feed from its standard input, writing MP3 to `stream_url` (live, with
    the smallest buffers) and to `recording` (the same encoding)."""

    def __init__(self, stream_url: str, recording: Path) -> None:
        self.stream_url = stream_url
        self.recording = Path(recording)
        self._process: subprocess.Popen[bytes] | None = None
        self._log = bytearray()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        """Start ffmpeg; AudioError if it cannot run."""
        self.recording.parent.mkdir(parents=True, exist_ok=True)
        output = ["-map", "0:a:0", "-ac", "1", "-ar", LIVE_SAMPLE_RATE, "-c:a", "libmp3lame",
                  "-b:a", LIVE_BITRATE, "-f", "mp3"]  # fmt: skip
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "level+error",
            "-fflags", "nobuffer", "-probesize", "32768", "-analyzeduration", "0",
            "-i", "pipe:0",
            *output, "-flush_packets", "1", "-content_type", "audio/mpeg", self.stream_url,
            *output, "-y", str(self.recording),
        ]  # fmt: skip
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise AudioError(f"cannot run ffmpeg for a live feed: {exc}") from exc
        self._reader = threading.Thread(target=self._read_log, daemon=True, name="loa-live-log")
        self._reader.start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def write(self, chunk: bytes) -> None:
        """Hand ffmpeg the next piece of the feed; AudioError once it has stopped (the stream
        server refused it or went away)."""
        process = self._process
        if process is None or process.stdin is None:
            raise AudioError("the live encoder was not started")
        try:
            process.stdin.write(chunk)
            process.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise AudioError(f"the live encoder stopped: {self.problem()}") from exc

    def close(self, kill: bool = False) -> int | None:
        """End the feed (at once with `kill`) and wait for ffmpeg; its exit status."""
        process = self._process
        if process is None:
            return None
        if kill:
            process.kill()
        elif process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            code = process.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(timeout=CLOSE_TIMEOUT_S)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def problem(self) -> str:
        """ffmpeg's last error line, for the log."""
        errors = log_errors(bytes(self._log).decode("utf-8", "replace"))
        return errors[-1] if errors else "ffmpeg ended"

    def _read_log(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            if len(self._log) < _LOG_LIMIT:
                self._log.extend(line)
