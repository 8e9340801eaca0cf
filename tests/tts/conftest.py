"""Fixtures for the tts tests: the real sample text, real MP3 bytes and a local stand-in for
Google Translate's batchexecute endpoint, so gTTS runs offline against a real HTTP server."""

import base64
import json
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import imageio_ffmpeg
import pytest

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "ke-hoach-truyen-thong-chinh-sach-hoang-hop.txt"


@pytest.fixture(scope="session")
def sample_text() -> str:
    """The commune plan as pasted by a culture officer (copied from shared/samples)."""
    return SAMPLE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def mp3_audio() -> bytes:
    """A short real MP3 (0.3 s of 440 Hz) made by the ffmpeg that imageio-ffmpeg ships."""
    completed = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=0.3",
            "-ac", "1", "-ar", "22050", "-f", "mp3", "-",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )  # fmt: skip
    assert completed.stdout.startswith(b"ID3")
    return completed.stdout


@dataclass
class FakeBatchExecute:
    """What the fake endpoint answers ("ok", "error", "slow", "garbage") and what it received.

    `statuses` are answered first, one per request and without audio (429 for rate limiting,
    with `retry_after` as its Retry-After header when set; None answers as `mode` says), before
    `mode` applies again.
    """

    audio: bytes
    mode: str = "ok"
    slow_seconds: float = 3.0
    url: str = ""
    texts: list[str] = field(default_factory=list)
    langs: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    statuses: list[int | None] = field(default_factory=list)
    retry_after: str = ""
    stop: threading.Event = field(default_factory=threading.Event)


def _make_handler(state: FakeBatchExecute) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            rpc = json.loads(urllib.parse.parse_qs(body)["f.req"][0])
            text, lang, *_ = json.loads(rpc[0][0][1])
            state.texts.append(text)
            state.langs.append(lang)
            state.times.append(time.monotonic())
            status = state.statuses.pop(0) if state.statuses else None
            if status is not None:
                self.send_response(status)
                if state.retry_after:
                    self.send_header("Retry-After", state.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if state.mode == "slow":
                state.stop.wait(state.slow_seconds)  # bounded; set at teardown
            if state.mode == "error":
                self.send_response(500)
                self.end_headers()
                return
            audio = b"<html>no audio</html>" if state.mode == "garbage" else state.audio
            inner = json.dumps([base64.b64encode(audio).decode()])
            line = json.dumps([["wrb.fr", "jQ1olc", inner]], separators=(",", ":"))
            payload = f")]}}'\n\n{len(line)}\n{line}\n".encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """gTTS sends through urllib's proxies and ignores no_proxy: keep 127.0.0.1 direct."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def batchexecute(mp3_audio: bytes) -> Iterator[FakeBatchExecute]:
    """A local HTTP server on a free port answering like translate.google.com's batchexecute."""
    state = FakeBatchExecute(audio=mp3_audio)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
