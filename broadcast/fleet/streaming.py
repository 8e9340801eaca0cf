"""The streaming engine of live broadcasts (phát trực tiếp): Icecast 2 from Debian's packages,
configured by Loa and run as our own child process, beside the brokers.

`write_config` renders the icecast.xml Loa owns (mode 0600): listeners on one address only, no
default password (the installation's random source and admin passwords, `Secrets`), no file
serving, hidden mounts, a small burst so receivers start within a second, and one rule for every
mount (`<mount type="default">`): a listener is let in only when Loa's web app says so. Icecast
asks it (`<authentication type="url">`, `listener_add`) with the mount and its query string; a
receiver's stream URL carries the live item's listen token (`?token=…`, `listen_token`: an
HMAC of the mount under the installation's key), so only a receiver told by a signed PLAY can
listen, and only while the item is on air. `IcecastServer` runs the `icecast2` binary with that
config in its own directory on a port of its own, as `MosquittoBroker` runs mosquitto.
"""

from __future__ import annotations

import grp
import hashlib
import hmac
import logging
import os
import pwd
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.etree import ElementTree

from broadcast.errors import LoaError
from broadcast.fleet.brokers.engine import log_explanation, stop_child
from broadcast.fleet.brokers.net import accepts_connections, bind_error, format_address
from wire.files import write_private_file

_LOGGER = logging.getLogger(__name__)

CONFIG_NAME = "icecast.xml"
LOG_NAME = "icecast.log"
MISSING_MESSAGE = "icecast2 not found: install the Debian package 'icecast2'"
SOURCE_USER = "source"  # Icecast's source login name: the password is what is secret
ADMIN_USER = "admin"
# Icecast refuses to run as root; it then drops to this user (Debian's package makes it).
RUN_AS_USERS = ("icecast2", "nobody")
_SHARE_DIR = Path("/usr/share/icecast2")
_TIMESTAMP = re.compile(r"^\[[^\]]*\]\s*")
# a live mount: one per live broadcast, named by its id
MOUNT_PREFIX = "/loa-live-"
MOUNT_SUFFIX = ".mp3"
_MOUNT = re.compile(r"^/loa-live-([1-9][0-9]{0,9})\.mp3$")
TOKEN_BYTES = 16
# ~1 s of a 32 kbps stream: a receiver starts at once without adding much delay to the voice
BURST_BYTES = 4096
SOURCE_TIMEOUT_S = 5  # a feed silent this long is dropped: its listeners see the stream end
MAX_LISTENERS = 5000


class StreamingError(LoaError):
    """The streaming engine cannot be configured or started; one line saying why."""


@dataclass(frozen=True)
class StreamPasswords:
    """An installation's Icecast passwords (from `Secrets`, never a default)."""

    source: str
    admin: str


def find_icecast() -> str | None:
    """The icecast2 binary (Debian's package), or another Icecast 2 on PATH."""
    return shutil.which("icecast2") or shutil.which("icecast")


def mount_for(broadcast_id: int) -> str:
    """The mount a live broadcast is fed to and played from."""
    return f"{MOUNT_PREFIX}{int(broadcast_id)}{MOUNT_SUFFIX}"


def listen_token(key: str, mount: str) -> str:
    """The token a receiver shows to listen to `mount`: the mount under the installation's
    key, so it cannot be guessed from another mount's token."""
    digest = hmac.new(key.encode(), mount.encode(), hashlib.sha256).hexdigest()
    return digest[: 2 * TOKEN_BYTES]


def stream_url(base_url: str, key: str, broadcast_id: int) -> str:
    """What a receiver plays for a live broadcast: the mount on `base_url` with its token."""
    mount = mount_for(broadcast_id)
    token = listen_token(key, mount)
    return f"{base_url.rstrip('/')}{mount}?{urllib.parse.urlencode({'token': token})}"


def source_url(host: str, port: int, passwords: StreamPasswords, broadcast_id: int) -> str:
    """Where a feed is sent (ffmpeg's icecast:// output) for a live broadcast."""
    password = urllib.parse.quote(passwords.source, safe="")
    return (
        f"icecast://{SOURCE_USER}:{password}@{format_address(host, port)}{mount_for(broadcast_id)}"
    )


def admitted_broadcast(key: str, requested: str) -> int | None:
    """The live broadcast a listener may hear, from Icecast's `mount` field (the path and
    its query string, as the listener asked): None unless the mount is a live mount and the
    token is its own."""
    path, _, query = requested.partition("?")
    match = _MOUNT.fullmatch(path)
    if match is None:
        return None
    tokens = urllib.parse.parse_qs(query, keep_blank_values=True).get("token", [])
    if len(tokens) != 1 or not hmac.compare_digest(
        tokens[0].encode(), listen_token(key, path).encode()
    ):
        return None
    return int(match.group(1))


def _run_as() -> pwd.struct_passwd | None:
    """The user Icecast drops to when started as root (it refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    for name in RUN_AS_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise StreamingError("icecast2 refuses to run as root and no 'icecast2' user exists")


def write_config(
    directory: Path,
    *,
    host: str,
    port: int,
    passwords: StreamPasswords,
    listener_auth_url: str,
) -> Path:
    """Write icecast.xml (0600) into `directory`; return its path. `listener_auth_url` is the
    web app's listener check (`POST`, Icecast's `listener_add`)."""
    if not passwords.source or not passwords.admin:
        raise StreamingError("the Icecast source and admin passwords must not be empty")
    if not listener_auth_url.startswith(("http://", "https://")):
        raise StreamingError(
            f"the listener check must be an http(s) URL, not {listener_auth_url!r}"
        )
    if not 0 < port < 65536:
        raise StreamingError(f"the stream port must be from 1 to 65535, not {port}")
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    root = ElementTree.Element("icecast")
    _add(root, "location", "Loa")
    _add(root, "admin", "loa@localhost")
    _add(root, "hostname", host)
    _add(root, "fileserve", "0")
    limits = _add(root, "limits")
    _add(limits, "clients", str(MAX_LISTENERS))
    _add(limits, "sources", "100")
    _add(limits, "queue-size", "262144")
    _add(limits, "client-timeout", "30")
    _add(limits, "header-timeout", "15")
    _add(limits, "source-timeout", str(SOURCE_TIMEOUT_S))
    _add(limits, "burst-on-connect", "1")
    _add(limits, "burst-size", str(BURST_BYTES))
    auth = _add(root, "authentication")
    _add(auth, "source-password", passwords.source)
    _add(auth, "relay-password", passwords.admin)
    _add(auth, "admin-user", ADMIN_USER)
    _add(auth, "admin-password", passwords.admin)
    socket = _add(root, "listen-socket")
    _add(socket, "port", str(port))
    _add(socket, "bind-address", host)
    mount = _add(root, "mount", type="default")
    _add(mount, "public", "0")
    _add(mount, "hidden", "1")
    listeners = _add(mount, "authentication", type="url")
    _add(listeners, "option", name="listener_add", value=listener_auth_url)
    _add(listeners, "option", name="auth_header", value="icecast-auth-user: 1")
    _add(listeners, "option", name="timeout", value="5")
    paths = _add(root, "paths")
    _add(paths, "basedir", str(directory))
    _add(paths, "logdir", str(directory))
    _add(paths, "pidfile", str(directory / "icecast.pid"))
    _add(paths, "webroot", str(_SHARE_DIR / "web"))
    _add(paths, "adminroot", str(_SHARE_DIR / "admin"))
    logging_ = _add(root, "logging")
    # "-" is its standard error, which `IcecastServer` keeps in icecast.log: Icecast opens its
    # log files after dropping root, and may not reach a directory only root can enter
    _add(logging_, "accesslog", "-")
    _add(logging_, "errorlog", "-")
    _add(logging_, "loglevel", "3")
    security = _add(root, "security")
    _add(security, "chroot", "0")
    user = _run_as()
    if user is not None:
        owner = _add(security, "changeowner")
        _add(owner, "user", user.pw_name)
        _add(owner, "group", _group_name(user.pw_gid))
    ElementTree.indent(root)
    text = (
        "<!-- Written by Loa (loa stream-config); regenerate it instead of editing. -->\n"
        + ElementTree.tostring(root, encoding="unicode")
        + "\n"
    )
    path = directory / CONFIG_NAME
    write_private_file(path, text)
    return path


def _group_name(gid: int) -> str:
    return grp.getgrgid(gid).gr_name


def _add(
    parent: ElementTree.Element, tag: str, text: str = "", **attributes: str
) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag, attributes)
    if text:
        element.text = text
    return element


class IcecastServer:
    """icecast2 as a child process with its own config directory; stopped by its own handle."""

    def __init__(
        self,
        directory: Path,
        host: str,
        port: int,
        passwords: StreamPasswords,
        listener_auth_url: str,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.passwords = passwords
        self.listener_auth_url = listener_auth_url
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    @property
    def url(self) -> str:
        """Where listeners reach it."""
        return f"http://{self.address}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 10) -> None:
        """Start icecast2; return once it accepts connections. One-line StreamingError
        otherwise."""
        if self._process is not None:
            raise StreamingError(f"icecast2 on {self.address} was already started")
        binary = find_icecast()
        if binary is None:
            raise StreamingError(MISSING_MESSAGE)
        error = bind_error(self.host, self.port)
        if error is not None:
            raise StreamingError(
                f"cannot listen on stream port {self.address}: {error.strerror or error}"
            )
        config = write_config(
            self.directory,
            host=self.host,
            port=self.port,
            passwords=self.passwords,
            listener_auth_url=self.listener_auth_url,
        )
        output_log = self.directory / LOG_NAME
        log_start = output_log.stat().st_size if output_log.exists() else 0
        self._output = output_log.open("ab")
        self._process = subprocess.Popen(
            [binary, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=self._output,
            cwd=self.directory,
        )
        deadline = time.monotonic() + timeout_s
        while not (accepts_connections(self.host, self.port, timeout_s=0.2) and self._serving()):
            code = self._process.poll()
            if code is not None or time.monotonic() >= deadline:
                line = self._explanation(log_start)
                self.stop()
                what = f"exited with code {code}" if code is not None else "did not listen"
                raise StreamingError(f"icecast2 on {self.address} {what}: {line}")
            time.sleep(0.05)
        _LOGGER.info(
            "icecast2 (pid %d) listening on %s, config %s", self._process.pid, self.address, config
        )

    def stop(self, timeout_s: float = 5) -> None:
        """Terminate our own icecast2 process, kill it if it does not exit; idempotent."""
        process, self._process = self._process, None
        stop_child(process, "icecast2", timeout_s)
        if self._output is not None:
            self._output.close()
            self._output = None

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_NAME

    def _explanation(self, offset: int) -> str:
        """Why it would not start: its ERROR, FATAL or EROR lines, else its last line."""
        return log_explanation(
            self.log_path,
            offset,
            _TIMESTAMP,
            lambda text: any(word in text for word in ("ERROR", "FATAL", "EROR")),
        )

    def _serving(self) -> bool:
        """Whether it answers HTTP: it takes connections before it opens its logs, and may
        still give up then."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                sock.sendall(b"GET /admin/stats HTTP/1.0\r\n\r\n")  # a 401: asks no one
                return sock.recv(12).startswith(b"HTTP/1.")
        except OSError:
            return False
