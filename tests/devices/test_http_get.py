"""The receiver's HTTP GET: every failure is one short error naming host:port and the cause."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devices.http_get import HttpError, iter_body, open_url

BODY = b"loa" * 10_000


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/ok":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/cut":  # promises more than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:1000])
            self.close_connection = True
        elif self.path == "/to-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/x.mp3")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_body_arrives_in_chunks(base: str) -> None:
    with open_url(f"{base}/ok", 5) as response:
        chunks = list(iter_body(response, f"{base}/ok", 4096))
    assert b"".join(chunks) == BODY and max(len(c) for c in chunks) <= 4096


def test_http_errors_carry_the_status_and_host(base: str) -> None:
    with pytest.raises(HttpError) as caught:
        open_url(f"{base}/missing.mp3?token=secret", 5)
    assert caught.value.status == 404
    host = base.removeprefix("http://")
    assert str(caught.value) == f"{host} answered HTTP 404"  # never the path and its token


def test_a_cut_download_is_an_error_not_a_short_file(base: str) -> None:
    with open_url(f"{base}/cut", 5) as response, pytest.raises(HttpError) as caught:
        b"".join(iter_body(response, f"{base}/cut", 4096))
    assert caught.value.status is None and "before the end" in str(caught.value)


def test_refused_and_foreign_schemes_are_named(base: str) -> None:
    port = _free_port()
    with pytest.raises(HttpError) as refused:
        open_url(f"http://127.0.0.1:{port}/a.mp3", 5)
    assert str(refused.value) == f"127.0.0.1:{port}: Connection refused"
    with pytest.raises(HttpError) as redirected:
        open_url(f"{base}/to-ftp", 5)
    assert "ftp" in str(redirected.value)
    with pytest.raises(HttpError):
        open_url("file:///etc/passwd", 5)
