"""The streaming engine of live broadcasts: Loa's icecast.xml and a real icecast2 on a free
loopback port, whose listeners are let in only with their mount's token.

A missing icecast2 FAILS these tests (never skips): `.ci/run` installs it.
"""

from __future__ import annotations

import http.server
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from xml.etree import ElementTree

import imageio_ffmpeg
import pytest
from support import LOOPBACK, free_ports

from broadcast.fleet import streaming
from broadcast.fleet.streaming import IcecastServer, StreamingError, StreamPasswords
from broadcast.settings import Secrets

KEY = "k" * 32
PASSWORDS = StreamPasswords(source="s3cret-source-x", admin="adm1n-pass")


def test_tokens_are_per_mount_and_checked_in_constant_form() -> None:
    url = streaming.stream_url("http://10.0.0.1:8010/", KEY, 12)
    parts = urllib.parse.urlsplit(url)
    assert parts.path == "/loa-live-12.mp3"
    requested = f"{parts.path}?{parts.query}"
    assert streaming.admitted_broadcast(KEY, requested) == 12
    assert streaming.admitted_broadcast("other" * 8, requested) is None
    other = streaming.stream_url("http://x", KEY, 13)
    token_13 = urllib.parse.parse_qs(urllib.parse.urlsplit(other).query)["token"][0]
    assert streaming.admitted_broadcast(KEY, f"/loa-live-12.mp3?token={token_13}") is None
    for refused in (
        "/loa-live-12.mp3",
        "/loa-live-12.mp3?token=",
        f"/loa-live-12.mp3?{parts.query}&{parts.query}",
        f"/loa-live-012.mp3?{parts.query}",
        f"/other.mp3?{parts.query}",
        "",
    ):
        assert streaming.admitted_broadcast(KEY, refused) is None, refused


def test_config_has_no_default_password_and_checks_every_listener(tmp_path: Path) -> None:
    path = streaming.write_config(
        tmp_path / "ice",
        host=LOOPBACK,
        port=18010,
        passwords=PASSWORDS,
        listener_auth_url="http://127.0.0.1:8080/live/listeners",
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    root = ElementTree.parse(path).getroot()
    assert "hackme" not in path.read_text()
    assert root.findtext("authentication/source-password") == PASSWORDS.source
    assert root.findtext("authentication/admin-password") == PASSWORDS.admin
    assert root.findtext("listen-socket/bind-address") == LOOPBACK
    assert root.findtext("fileserve") == "0"
    (mount,) = root.findall("mount")
    assert mount.get("type") == "default"
    auth = mount.find("authentication")
    assert auth is not None and auth.get("type") == "url"
    options = {option.get("name"): option.get("value") for option in auth.findall("option")}
    assert options["listener_add"] == "http://127.0.0.1:8080/live/listeners"
    with pytest.raises(StreamingError):
        streaming.write_config(
            tmp_path, host=LOOPBACK, port=1, passwords=PASSWORDS, listener_auth_url="ftp://x"
        )
    with pytest.raises(StreamingError):
        streaming.write_config(
            tmp_path,
            host=LOOPBACK,
            port=1,
            passwords=StreamPasswords("", "a"),
            listener_auth_url="http://x",
        )


def test_secrets_make_random_stream_passwords_kept_private(tmp_path: Path) -> None:
    secrets = Secrets(tmp_path)
    values = {secrets.stream_source_password, secrets.stream_admin_password}
    assert len(values) == 2 and all(len(value) >= 32 for value in values)
    assert Secrets(tmp_path).stream_token_key == secrets.stream_token_key
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


class _ListenerCheck(http.server.BaseHTTPRequestHandler):
    """Icecast's listener_add, answered as Loa's web app answers it (the token's rule only)."""

    asked: ClassVar[list[dict[str, list[str]]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        self.asked.append(form)
        self.send_response(200)
        if streaming.admitted_broadcast(KEY, form.get("mount", [""])[0]) is not None:
            self.send_header("icecast-auth-user", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def icecast(tmp_path: Path) -> Iterator[IcecastServer]:
    web_port, stream_port = free_ports(2)
    checker = http.server.ThreadingHTTPServer((LOOPBACK, web_port), _ListenerCheck)
    thread = threading.Thread(target=checker.serve_forever, daemon=True)
    thread.start()
    server = IcecastServer(
        tmp_path / "icecast",
        LOOPBACK,
        stream_port,
        PASSWORDS,
        f"http://{LOOPBACK}:{web_port}/live/listeners",
    )
    assert streaming.find_icecast(), streaming.MISSING_MESSAGE
    server.start()
    try:
        yield server
    finally:
        server.stop()
        checker.shutdown()
        checker.server_close()


def _tone_feed(url: str, seconds: float) -> subprocess.Popen[bytes]:
    """A 440 Hz tone in real time as the microphone, sent where a live feed goes."""
    return subprocess.Popen(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:a", "libmp3lame", "-b:a", "32k", "-content_type", "audio/mpeg", "-f", "mp3", url,
        ],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _listen(url: str, size: int = 2048) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(size)
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _wait_for_mount(server: IcecastServer, url: str, timeout_s: float = 10) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout_s
    while True:
        status, data = _listen(url)
        if status == 200 or time.monotonic() >= deadline:
            return status, data
        time.sleep(0.2)


@pytest.mark.integration
def test_only_a_listener_with_its_mount_token_hears_the_live_feed(
    icecast: IcecastServer,
) -> None:
    feed = _tone_feed(streaming.source_url(icecast.host, icecast.port, PASSWORDS, 7), 20)
    try:
        good = streaming.stream_url(icecast.url, KEY, 7)
        status, data = _wait_for_mount(icecast, good)
        assert status == 200
        assert len(data) == 2048 and b"\xff\xfb" in data  # MPEG-1 layer III frames
        mount = streaming.mount_for(7)
        wrong = streaming.listen_token(KEY, streaming.mount_for(8))
        assert _listen(f"{icecast.url}{mount}")[0] == 401
        assert _listen(f"{icecast.url}{mount}?token={wrong}")[0] == 401
        assert _listen(f"{icecast.url}{mount}?token=x{good[-31:]}")[0] == 401
        asked = {form["mount"][0] for form in _ListenerCheck.asked}
        assert f"{mount}?token={wrong}" in asked
        # the source password is the installation's: a wrong one cannot speak on a mount
        thief = _tone_feed(
            streaming.source_url(
                icecast.host, icecast.port, StreamPasswords("hackme", "hackme"), 9
            ),
            2,
        )
        assert thief.wait(timeout=10) != 0
    finally:
        feed.kill()
        feed.wait(timeout=5)


def test_a_taken_port_or_a_missing_binary_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (port,) = free_ports(1)
    server = IcecastServer(tmp_path, LOOPBACK, port, PASSWORDS, "http://127.0.0.1:1/x")
    monkeypatch.setattr(streaming, "find_icecast", lambda: None)
    with pytest.raises(StreamingError, match="install the Debian package 'icecast2'"):
        server.start()
