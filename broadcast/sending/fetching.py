"""Fetching a recording a source-information system names by URL, before it is validated.

The address comes from outside, so the fetch is bounded in every way: http or https only, one
connection with a timeout, at most MAX_UPLOAD_BYTES read, no redirect followed (a redirect could
lead anywhere), and, unless the installation allows it (`Settings.source_private_audio`: the
source system on the province's own network), no address that resolves into a loopback, private,
link-local or otherwise non-public network, so a source account cannot make the server read its
own neighbours (SSRF). Every refusal is a ValidationError on the field that named the URL.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from broadcast.const import MAX_UPLOAD_BYTES, MAX_URL_CHARS
from broadcast.errors import N_, ValidationError

TIMEOUT_S = 20.0
_CHUNK = 64 * 1024


def fetch_to_file(url: object, field: str, *, allow_private: bool, directory: Path) -> Path:
    """Download `url` into a new file in `directory` and return its path (the caller removes
    it); a ValidationError on `field` names what was wrong with the address or the answer."""
    text = str(url or "").strip()
    parts = urlsplit(text)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(text) > MAX_URL_CHARS
        or any(ch.isspace() or ord(ch) < 0x20 for ch in text)
    ):
        raise _invalid_url(field)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _invalid_url(field) from None
    address = _public_address(parts.hostname, port, field, allow_private)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = _PinnedHTTPS(parts.hostname, port, address, timeout=TIMEOUT_S)
    else:
        connection = _PinnedHTTP(parts.hostname, port, address, timeout=TIMEOUT_S)
    where = f"{parts.hostname}:{port}"
    try:
        connection.request("GET", path, headers={"User-Agent": "Loa", "Accept": "audio/*"})
        response = connection.getresponse()
        if response.status != 200:
            raise ValidationError(
                field,
                N_("máy chủ %(host)s trả lời %(status)s khi tải âm thanh"),
                "fetch_failed",
                host=where,
                status=response.status,
            )
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            raise _too_large(field)
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".audio", delete=False) as out:
            target = Path(out.name)
            total = 0
            while chunk := response.read(_CHUNK):
                total += len(chunk)
                if total > MAX_UPLOAD_BYTES:
                    out.close()
                    target.unlink(missing_ok=True)
                    raise _too_large(field)
                out.write(chunk)
        return target
    except (OSError, http.client.HTTPException) as exc:
        raise ValidationError(
            field,
            N_("không tải được âm thanh từ %(host)s: %(problem)s"),
            "fetch_failed",
            host=where,
            problem=str(exc)[:200] or type(exc).__name__,
        ) from None
    finally:
        connection.close()


def _invalid_url(field: str) -> ValidationError:
    message = N_("địa chỉ âm thanh phải là một URL http:// hoặc https:// hợp lệ")
    return ValidationError(field, message, "invalid_url")


def _too_large(field: str) -> ValidationError:
    return ValidationError(
        field,
        N_("tệp âm thanh lớn quá %(max)s MB"),
        "too_large",
        max=MAX_UPLOAD_BYTES // (1024 * 1024),
    )


def _public_address(host: str, port: int, field: str, allow_private: bool) -> str:
    """The address to connect to: resolved once here, so what is checked is what is reached
    (a name that resolves differently on the second lookup cannot slip past the check)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ValidationError(
            field, N_("không tìm thấy máy chủ %(host)s"), "unknown_host", host=host[:200]
        ) from None
    for _family, _kind, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if allow_private or address.is_global:
            return str(address)
    raise ValidationError(
        field,
        N_(
            "%(host)s là một địa chỉ nội bộ: máy chủ chỉ tải âm thanh từ địa chỉ công khai"
            " (LOA_SOURCE_PRIVATE_AUDIO=1 cho phép mạng nội bộ)"
        ),
        "private_address",
        host=host[:200],
    )


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to an address already checked, with the Host header of the name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address already checked; the certificate is checked against the name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
