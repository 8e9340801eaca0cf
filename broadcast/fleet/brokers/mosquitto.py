"""The production broker: mosquitto 2, configured from the same `BrokerAccess` as the embedded one.

`write_config` renders mosquitto.conf + passwd + acl (all 0600, each written atomically, nothing
written unless every input checks out) into one directory: no anonymous access, per-user ACLs,
persistence (so QoS 1 commands queued for offline receivers survive a broker restart),
`set_tcp_nodelay`, bounded queues and packet sizes, and its listeners, each either the
receivers' or the server's:

* receivers' listeners (the TLS one, `TlsListener`, or without TLS the plain one) take
  receivers' logins only and `use_username_as_clientid`: a receiver's client id is its device
  id whatever it sends, so a stolen receiver's login cannot connect as another receiver (or as
  the server) and make mosquitto close that client's connection;
* server listeners (with TLS the plain one on loopback, plus an optional TLS one for servers
  on other hosts; without TLS a second plain one on loopback) take the server's login only,
  which keeps free client ids: its answer-back session `loa-server` and one publishing
  session per process.

`per_listener_settings true` gives each kind its own password file (`passwd`, `passwd-server`);
the ACL file is shared. The certificate and key are checked before anything is written.
`MosquittoBroker` runs the Debian `mosquitto` binary with that config as a child
process (tests, single-machine installs); a systemd-managed mosquitto can use the very same
files (`broker_user` hands them to the user mosquitto runs as).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import pwd
import re
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from broadcast.fleet.brokers.access import BrokerAccess, BrokerError
from broadcast.fleet.brokers.engine import log_explanation, stop_child
from broadcast.fleet.brokers.net import accepts_connections, check_port_free, format_address
from wire import protocol
from wire.files import write_private_file

_LOGGER = logging.getLogger(__name__)

CONFIG_NAME = "mosquitto.conf"
PASSWORD_FILE_NAME = "passwd"  # receivers' logins
SERVER_PASSWORD_FILE_NAME = "passwd-server"  # the server's logins
ACL_FILE_NAME = "acl"
LOG_FILE_NAME = "mosquitto.log"
PERSISTENCE_FILE_NAME = "mosquitto.db"
MISSING_MESSAGE = "mosquitto not found: install the Debian package 'mosquitto'"
_SBIN_DIRS = "/usr/sbin:/usr/local/sbin:/sbin"
# mosquitto reads a config value up to the end of the line; keep paths and hosts to one plain line
_SAFE_VALUE = re.compile(r"^[^\s#\x00-\x1f\x7f]+$")
_SAFE_PATH = re.compile(r"^[^\n\r\x00]+$")
_TIMESTAMP = re.compile(r"^(\d+|\d{4}-\d\d-\d\dT[\d:]+): ")

DEFAULT_TLS_PORT = 8883
TLS_MIN_VERSION = "tlsv1.2"
# The server's answer-back session hears every receiver: a commune-wide emergency is hundreds of
# events at once, well past mosquitto's default queue of 1,000 per client.
MAX_QUEUED_MESSAGES = 100_000
MAX_INFLIGHT_MESSAGES = 20  # per client, unacknowledged QoS 1 messages on their way to it
# No client may push megabytes through the broker (mosquitto drops the sender of a larger
# packet). It is 4 times what a receiver accepts (protocol.MAX_MESSAGE_BYTES), so an oversized
# command still reaches the receivers, which refuse and report it, without cutting the server.
MAX_PACKET_BYTES = 4 * protocol.MAX_MESSAGE_BYTES
# A receiver away this long (decommissioned, stolen) loses its queued session; when it comes
# back it subscribes again and gets its retained manifest.
PERSISTENT_CLIENT_EXPIRATION = "30d"
CERT_EXPIRY_WARNING = timedelta(days=30)
_LOOPBACK_NAMES = ("localhost",)
LOOPBACK_HOST = "127.0.0.1"  # where the server's plain listener is without TLS


@dataclass(frozen=True)
class TlsListener:
    """The listener receivers reach over the network: TLS only (1.2 or newer).

    `certfile` is the broker's certificate (with any intermediate certificates after it),
    `keyfile` its unencrypted private key. `cafile` is the CA of receivers' client
    certificates, needed only with `require_certificate` (a password is still required too).
    `host` "" listens on every interface.
    """

    certfile: Path
    keyfile: Path
    cafile: Path | None = None
    port: int = DEFAULT_TLS_PORT
    host: str = ""
    require_certificate: bool = False


@dataclass(frozen=True)
class TlsReport:
    """What the checks of a `TlsListener` found: the names receivers may connect to, and
    what still works but deserves attention (expiry soon, a key others can read)."""

    names: tuple[str, ...]
    not_after: datetime
    warnings: tuple[str, ...]


def find_mosquitto() -> str | None:
    """The mosquitto binary: on PATH, or in sbin (Debian installs it in /usr/sbin)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path=_SBIN_DIRS)


def _checked_path(path: Path) -> str:
    text = str(path)
    if not _SAFE_PATH.fullmatch(text) or text != text.strip():
        raise BrokerError(f"mosquitto cannot use the path {text!r} (no newlines or outer spaces)")
    return text


def _render_acl(access: BrokerAccess) -> str:
    lines = ["# Written by Loa from the broker access file; regenerate it instead of editing.", ""]
    for user in access.users:
        lines.append(f"user {user.username}")
        lines.extend(f"topic write {topic}" for topic in user.publish)
        lines.extend(f"topic read {topic}" for topic in user.subscribe)
        lines.append("")
    return "\n".join(lines)


def _render_passwords(access: BrokerAccess, any_client_id: bool) -> str:
    """The passwd lines of the server's users (`any_client_id`) or of everyone else."""
    return "".join(
        f"{user.username}:{user.password_hash}\n"
        for user in access.users
        if user.any_client_id == any_client_id
    )


def write_config(
    directory: Path,
    access: BrokerAccess,
    host: str,
    port: int | None,
    persistence: bool = True,
    *,
    tls: TlsListener | None = None,
    server_port: int | None = None,
    server_tls_port: int | None = None,
    persistence_dir: Path | None = None,
    broker_user: str | None = None,
) -> Path:
    """Write mosquitto.conf, passwd, passwd-server and acl (0600) into `directory`; return the
    .conf path.

    Without `tls`, the plain listener (`host`:`port`) is the receivers' and the server gets its
    own plain listener on 127.0.0.1:`server_port`. With `tls`, receivers use the TLS listener;
    the plain one (`port` None leaves it out) is the server's and must be on a loopback address,
    and `server_tls_port` adds a TLS listener (same certificate, `tls.host`) for servers on
    other hosts.
    `broker_user` is the system user mosquitto runs as (it reads these files after dropping
    root): the files and a new directory are handed to it. Every check runs before anything
    is written, and each failure is one BrokerError naming the option or file.
    """
    if port is None and tls is None:
        raise BrokerError("no listener: give a plain port, a TLS listener, or both")
    if port is not None:
        _check_listener(host, port, "MQTT")
    report: TlsReport | None = None
    if tls is None:
        if server_tls_port is not None:
            raise BrokerError("a TLS listener for the server needs the TLS certificate and key")
        if server_port is None:
            raise BrokerError(
                "the server needs a listener of its own beside the receivers' (whose client ids"
                " are bound to their logins): give a server port (--server-port, e.g. 1884)"
            )
        _check_listener(LOOPBACK_HOST, server_port, "server")
        if server_port == port:
            raise BrokerError(f"the receivers' and the server's listener cannot share port {port}")
    else:
        _check_listener(tls.host or "0.0.0.0", tls.port, "TLS")
        if server_port is not None:
            raise BrokerError(
                "with TLS on, the plain listener is the server's: give its port as the plain"
                " port, not as a server port"
            )
        if port is not None and not is_loopback(host):
            raise BrokerError(
                f"with TLS on, the plain listener is only for the server on this machine:"
                f" listen on 127.0.0.1 or ::1, not {host!r}, or leave it out"
            )
        ports = [p for p in (port, tls.port, server_tls_port) if p is not None]
        shared = sorted({p for p in ports if ports.count(p) > 1})
        if shared:
            raise BrokerError(f"two listeners cannot share port {shared[0]}")
        if server_tls_port is not None:
            _check_listener(tls.host or "0.0.0.0", server_tls_port, "server TLS")
        report = check_tls(tls)
    owner = _owner(broker_user)
    directory = Path(directory).resolve()
    persistence_path = Path(persistence_dir).resolve() if persistence_dir else directory
    config_path = directory / CONFIG_NAME
    password_path = directory / PASSWORD_FILE_NAME
    server_password_path = directory / SERVER_PASSWORD_FILE_NAME
    acl_path = directory / ACL_FILE_NAME
    receivers_security = [
        "allow_anonymous false",
        f"password_file {_checked_path(password_path)}",
        f"acl_file {_checked_path(acl_path)}",
        "use_username_as_clientid true",
    ]
    server_security = [
        "allow_anonymous false",
        f"password_file {_checked_path(server_password_path)}",
        f"acl_file {_checked_path(acl_path)}",
    ]
    lines = [
        "# Written by Loa (broadcast.fleet.brokers.mosquitto); regenerate it instead of editing.",
        "# Receivers' listeners bind each login to its client id; the server's take only the",
        "# server's login (passwd-server), whose sessions need client ids of their own.",
        "per_listener_settings true",
        "set_tcp_nodelay true",
        f"persistence {'true' if persistence else 'false'}",
        # mosquitto wants the trailing slash on a persistence directory
        f"persistence_location {_checked_path(persistence_path)}/",
        f"persistence_file {PERSISTENCE_FILE_NAME}",
        "autosave_interval 60",
        f"persistent_client_expiration {PERSISTENT_CLIENT_EXPIRATION}",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        f"max_packet_size {MAX_PACKET_BYTES}",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "connection_messages true",
    ]
    if broker_user is not None:
        lines.append(f"user {broker_user}")
    elif os.geteuid() == 0:
        # As root mosquitto switches to the 'mosquitto' user, who cannot read these 0600 files;
        # run it as the user who owns them, i.e. with the privileges of whoever started Loa.
        lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
    if tls is None:
        lines += [f"listener {int(port)} {host}", *receivers_security]  # type: ignore[arg-type]
        lines += [f"listener {int(server_port)} {LOOPBACK_HOST}", *server_security]  # type: ignore[arg-type]
    else:
        if port is not None:
            lines += [f"listener {int(port)} {host}", *server_security]
        lines += [*_tls_lines(tls), *receivers_security]
        if server_tls_port is not None:
            lines += [*_tls_lines(replace(tls, port=server_tls_port)), *server_security]
    warnings = list(report.warnings) if report is not None else []
    if tls is not None and broker_user is not None:
        warnings += _unreadable_warnings(tls, broker_user)
    for warning in warnings:
        _LOGGER.warning("%s", warning)
    _make_private_dir(directory, owner)
    if persistence_path != directory:
        _make_private_dir(persistence_path, owner)
    write_private_file(password_path, _render_passwords(access, False), owner)
    write_private_file(server_password_path, _render_passwords(access, True), owner)
    write_private_file(acl_path, _render_acl(access), owner)
    write_private_file(config_path, "\n".join(lines) + "\n", owner)
    return config_path


def _tls_lines(tls: TlsListener) -> list[str]:
    """The TLS listener's lines; the caller adds its security lines after them."""
    # absolute, not resolved: a renewed certificate arrives behind the same symlink (certbot)
    listen = f"listener {int(tls.port)} {tls.host}".rstrip()
    lines = [
        listen,
        f"certfile {_checked_path(Path(tls.certfile).absolute())}",
        f"keyfile {_checked_path(Path(tls.keyfile).absolute())}",
        f"tls_version {TLS_MIN_VERSION}",
    ]
    if tls.cafile is not None:
        lines.append(f"cafile {_checked_path(Path(tls.cafile).absolute())}")
    if tls.require_certificate:
        lines.append("require_certificate true")
    return lines


def _check_listener(host: str, port: int, what: str) -> None:
    if not _SAFE_VALUE.fullmatch(host):
        raise BrokerError(f"bad {what} listen address {host!r}")
    if not 1 <= int(port) <= 65535:
        raise BrokerError(f"bad {what} port {port} (must be 1..65535)")


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.1, ::1, localhost)."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _owner(broker_user: str | None) -> tuple[int, int] | None:
    """(uid, gid) of the user mosquitto runs as, when the files must be handed to it."""
    if broker_user is None:
        return None
    try:
        entry = pwd.getpwnam(broker_user)
    except KeyError:
        raise BrokerError(f"no system user {broker_user!r} to run mosquitto as") from None
    if entry.pw_uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise BrokerError(
            f"only root can hand the broker's files to user {broker_user!r}:"
            " run this as root, or leave the broker user out"
        )
    return entry.pw_uid, entry.pw_gid


def _unreadable_warnings(tls: TlsListener, broker_user: str) -> list[str]:
    """mosquitto reads its certificates after dropping root: say which ones its user cannot."""
    entry = pwd.getpwnam(broker_user)
    groups = set(os.getgrouplist(broker_user, entry.pw_gid))
    files = [tls.certfile, tls.keyfile, *([tls.cafile] if tls.cafile else [])]
    return [
        f"mosquitto runs as {broker_user!r}, who cannot read {path}: copy it to a folder of"
        f" the broker's (e.g. /etc/mosquitto/certs) and chown it to {broker_user}"
        for path in files
        if not _readable_by(Path(path).resolve(), entry.pw_uid, groups)
    ]


def _readable_by(path: Path, uid: int, groups: set[int]) -> bool:
    """Whether a user may read `path` by its mode bits and its folders' (ACLs not counted)."""
    if uid == 0:
        return True

    def may(target: Path, bits: tuple[int, int, int]) -> bool:
        info = target.stat()
        if info.st_uid == uid:
            return bool(info.st_mode & bits[0])
        if info.st_gid in groups:
            return bool(info.st_mode & bits[1])
        return bool(info.st_mode & bits[2])

    try:
        search = (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)
        if not all(may(folder, search) for folder in path.parents):
            return False
        return may(path, (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH))
    except OSError:
        return False


def _make_private_dir(path: Path, owner: tuple[int, int] | None) -> None:
    """Create `path` (0700); a directory we create belongs to the broker's user."""
    if path.is_dir():
        return
    path.mkdir(parents=True, mode=0o700)
    if owner is not None:
        os.chown(path, *owner)


def check_tls(tls: TlsListener, now: datetime | None = None) -> TlsReport:
    """Check the broker's certificate, key and CA before mosquitto (and every receiver) does.

    Raises BrokerError naming the file for what would stop mosquitto or make every receiver
    refuse the broker: a missing or unreadable file, not PEM, an encrypted key, a key of
    another certificate, an expired certificate, a client-certificate requirement without CA.
    """
    now = now or datetime.now(UTC)
    certificates = _load_certificates(Path(tls.certfile), "certificate (certfile)")
    leaf = certificates[0]
    key_data = _read_tls_file(Path(tls.keyfile), "key (keyfile)")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise BrokerError(
            f"TLS key {tls.keyfile} is encrypted: mosquitto cannot ask for its password;"
            " store it unencrypted and readable only by the broker (chmod 600)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise BrokerError(f"TLS key {tls.keyfile} is not a PEM private key") from None
    if _public_der(key.public_key()) != _public_der(leaf.public_key()):
        raise BrokerError(
            f"TLS key {tls.keyfile} does not belong to the certificate {tls.certfile}"
        )
    if tls.cafile is not None:
        _load_certificates(Path(tls.cafile), "CA (cafile)")
    elif tls.require_certificate:
        raise BrokerError("requiring client certificates needs the CA that signs them (cafile)")
    not_after = leaf.not_valid_after_utc
    if not_after <= now:
        raise BrokerError(
            f"TLS certificate {tls.certfile} expired on {not_after:%Y-%m-%d}: receivers refuse it"
        )
    warnings: list[str] = []
    if leaf.not_valid_before_utc > now:
        start = leaf.not_valid_before_utc
        warnings.append(
            f"TLS certificate {tls.certfile} is valid only from {start:%Y-%m-%d %H:%M} UTC"
        )
    if not_after - now < CERT_EXPIRY_WARNING:
        warnings.append(
            f"TLS certificate {tls.certfile} expires on {not_after:%Y-%m-%d}: renew it soon"
        )
    if Path(tls.keyfile).stat().st_mode & stat.S_IROTH:
        warnings.append(f"TLS key {tls.keyfile} is readable by every user: chmod 600 it")
    names = _certificate_names(leaf)
    if not names:
        warnings.append(
            f"TLS certificate {tls.certfile} names no host (no subjectAltName):"
            " receivers check the broker's name against it and will refuse it"
        )
    return TlsReport(names, not_after, tuple(warnings))


def _read_tls_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BrokerError(f"TLS {what} {path} does not exist") from None
    except IsADirectoryError:
        raise BrokerError(f"TLS {what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise BrokerError(f"cannot read TLS {what} {path}: {exc.strerror or exc}") from None


def _load_certificates(path: Path, what: str) -> list[x509.Certificate]:
    data = _read_tls_file(path, what)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise BrokerError(f"TLS {what} {path} is not a PEM certificate") from None
    return certificates


def _public_der(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _certificate_names(certificate: x509.Certificate) -> tuple[str, ...]:
    """The DNS names and IP addresses a client may reach the broker by (subjectAltName)."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    names = extension.value.get_values_for_type(x509.DNSName)
    addresses = extension.value.get_values_for_type(x509.IPAddress)
    return (*names, *(str(address) for address in addresses))


class MosquittoBroker:
    """mosquitto as a child process with its own config directory; stopped by its own handle."""

    def __init__(
        self,
        directory: Path,
        host: str,
        port: int,
        access: BrokerAccess,
        tls: TlsListener | None = None,
        *,
        server_port: int | None = None,
        server_tls_port: int | None = None,
    ) -> None:
        """`port` is the plain listener on `host`; `tls` adds a TLS listener beside it; the
        server's listeners are as `write_config` says (without TLS, 127.0.0.1:`server_port`)."""
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.access = access
        self.tls = tls
        self.server_port = server_port
        self.server_tls_port = server_tls_port
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE_NAME

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 10) -> None:
        """Start mosquitto; return once it accepts connections. One-line BrokerError otherwise."""
        if self._process is not None:
            raise BrokerError(f"mosquitto on {self.address} was already started")
        binary = find_mosquitto()
        if binary is None:
            raise BrokerError(MISSING_MESSAGE)
        listening = [(self.host, self.port)]
        if self.server_port is not None:
            listening.append((LOOPBACK_HOST, self.server_port))
        if self.tls is not None:
            listening.append((self.tls.host or "0.0.0.0", self.tls.port))
            if self.server_tls_port is not None:
                listening.append((self.tls.host or "0.0.0.0", self.server_tls_port))
        for host, port in listening:
            check_port_free(host, port)
        config_path = write_config(
            self.directory,
            self.access,
            self.host,
            self.port,
            tls=self.tls,
            server_port=self.server_port,
            server_tls_port=self.server_tls_port,
        )
        self._log = self.log_path.open("ab")
        log_start = self._log.tell()
        self._process = subprocess.Popen(
            [binary, "-c", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            code = self._process.poll()
            if code is not None:
                line = self._error_line(log_start)
                self.stop()
                raise BrokerError(f"mosquitto exited with code {code}: {line}")
            if all(accepts_connections(h, p, timeout_s=0.2) for h, p in listening):
                break
            if time.monotonic() >= deadline:
                self.stop()
                raise BrokerError(
                    f"mosquitto did not listen on {self.address} within {timeout_s:g} s;"
                    f" see {self.log_path}"
                )
            time.sleep(0.05)
        _LOGGER.info(
            "mosquitto (pid %d) listening on %s, config %s",
            self._process.pid,
            self.address,
            config_path,
        )

    def stop(self, timeout_s: float = 5) -> None:
        """Terminate our own mosquitto process, kill it if it does not exit; idempotent."""
        process, self._process = self._process, None
        stop_child(process, "mosquitto", timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _error_line(self, offset: int) -> str:
        """mosquitto's own explanation: its 'Error' lines (timestamps cut), else its last line."""
        return log_explanation(
            self.log_path, offset, _TIMESTAMP, lambda line: "error" in line.lower()
        )
