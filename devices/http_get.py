"""HTTP GET for the receiver, with the standard library: media downloads and live relay streams.

`requests` cost the agent about 5 MB of resident memory (urllib3, charset_normalizer, idna,
certifi: 130 modules) for two plain GETs, on a Pi Zero 2 W with 512 MB; `urllib.request` is
loaded anyway (paho-mqtt imports it). Every failure becomes one `HttpError` naming the host and
the root cause in a few words (refused, timed out, name unknown, certificate not trusted), short
enough for a DeviceEvent detail. The module is not called `http` so it can never shadow the
standard library's package.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

_LOGGER = logging.getLogger(__name__)

USER_AGENT = "loa-receiver"


class HttpError(Exception):
    """A GET that failed: `status` is the HTTP status the server answered with, or None when no
    complete answer came (refused, DNS, timeout, TLS, a connection cut in the middle)."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.host = host_of(url)
        self.reason = reason
        self.status = status
        if status is None:
            super().__init__(f"{self.host}: {reason}")
        else:
            super().__init__(f"{self.host} answered HTTP {status}")


def host_of(url: str) -> str:
    """`host:port` of `url` for messages (never its path: it may carry a token)."""
    return urlsplit(url).netloc or url[:60]


def open_url(url: str, timeout_s: float) -> http.client.HTTPResponse:
    """GET `url`, following redirects; the open response (status 200) for the caller to close.

    `timeout_s` bounds the connection and every single read, so a stalled server cannot hang a
    thread. https is verified (certificate and host name) against the system CA store, which is
    what `http.client` does by default; the broker's CA in the receiver config is not involved.
    """
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        response = _opener().open(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise HttpError(url, str(exc.reason), exc.code) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise HttpError(url, describe_error(exc)) from exc
    if response.status != 200:  # another 2xx: not a body we asked for
        response.close()
        raise HttpError(url, str(response.reason), response.status)
    return response


def iter_body(
    response: http.client.HTTPResponse, url: str, size: int, live: bool = False
) -> Iterator[bytes]:
    """The body in chunks of at most `size` bytes; HttpError if the connection breaks, stalls
    beyond the timeout or ends before its Content-Length (`http.client` itself just stops).

    `live`: yield whatever has arrived (a live stream is slow: waiting for full chunks would
    overrun the end of a relay)."""
    read = response.read1 if live else response.read
    while True:
        try:
            data = read(size)
        except (OSError, http.client.HTTPException) as exc:
            raise HttpError(url, describe_error(exc)) from exc
        if not data:
            break
        yield data
    if response.length:  # what Content-Length promised and never came
        raise HttpError(url, f"connection closed {response.length} bytes before the end")


def describe_error(exc: BaseException) -> str:
    """The root cause in a few words; urllib wraps it in a URLError."""
    if isinstance(exc, urllib.error.URLError):
        if not isinstance(exc.reason, BaseException):
            return str(exc.reason)  # e.g. "unknown url type: ftp"
        exc = exc.reason
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed before the end"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


def _opener() -> urllib.request.OpenerDirector:
    """http and https only, even through a redirect (no file:, ftp: or data: URLs); proxies from
    the environment (`http_proxy`, `https_proxy`, `no_proxy`) as before."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),
    ):
        opener.add_handler(handler)
    return opener
