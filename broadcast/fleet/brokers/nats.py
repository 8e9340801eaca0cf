"""The clustered broker candidate: NATS server (Debian's `nats-server`) with its MQTT gateway.

NATS keeps MQTT sessions, QoS 1 queues and retained messages in JetStream (file storage under
the given directory), which replicates them across a cluster; this module runs ONE node, as
the MQTT integration tests do. `write_config` renders Loa's `BrokerAccess` into nats-server.conf
(0600, written atomically, nothing written unless every input checks out): no anonymous access,
one user per `BrokerUser` allowed on MQTT connections only, its ACL as NATS publish/subscribe
permissions (MQTT `a/+/b` is the NATS subject `a.*.b`, `#` is `>`).

What NATS cannot take from Loa as it is (measured; docs/deployment.md has the comparison):

* passwords: nats-server 2.9 verifies bcrypt hashes or clear text, not the mosquitto `$7$`
  (PBKDF2) hashes of the access file, and has no auth callout (2.10); the caller hands the
  passwords (checked against the `$7$` hashes), and the config gets bcrypt hashes of them;
* client ids: NATS cannot bind a login to its client id (mosquitto's
  `use_username_as_clientid`); any login may connect with any client id, close that client's
  connection and, with a clean session, delete its queued commands. Loa's answer is client ids
  no other login can guess (`access.secret_client_id`: receivers' configs and the server carry
  them; tests/broadcast/fleet/brokers/test_integration.py and test_nats.py).

`NatsBroker` runs the binary with that config as a child process on a given MQTT port (its NATS
client port is left to the kernel, on loopback).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from broadcast.fleet.brokers.access import BrokerAccess, BrokerError, BrokerUser, verify_password
from broadcast.fleet.brokers.engine import log_explanation, stop_child
from broadcast.fleet.brokers.net import accepts_connections, check_port_free, format_address
from wire import protocol
from wire.files import write_private_file

_LOGGER = logging.getLogger(__name__)

CONFIG_NAME = "nats-server.conf"
LOG_FILE_NAME = "nats-server.log"
STORE_DIR_NAME = "jetstream"
MISSING_MESSAGE = "nats-server not found: install the Debian package 'nats-server'"
_SBIN_DIRS = "/usr/sbin:/usr/local/sbin:/sbin"
# bcrypt is checked on every CONNECT: 2,000 receivers reconnecting after a node's death cost
# 2,000 hashes; cost 10 (~50 ms each) keeps that under two core-minutes across a cluster.
BCRYPT_COST = 10
# As mosquitto's limits (broadcast.fleet.brokers.mosquitto): 4 times what a receiver accepts.
MAX_PAYLOAD_BYTES = 4 * protocol.MAX_MESSAGE_BYTES
# QoS 1 messages on their way to one MQTT client before it acknowledges (mosquitto: 20).
MAX_ACK_PENDING = 20
# A QoS 1 message not acknowledged within this is sent again, also to the session's next
# connection: a receiver whose link died (or whose node was killed) gets it this late at most.
ACK_WAIT_S = 5
_SAFE_PATH = re.compile(r'^[^\n\r\x00"\\]+$')
_SAFE_HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]+$")
_SUBJECT_LEVEL = re.compile(r"^[A-Za-z0-9_-]+$")
_LOG_PREFIX = re.compile(r"^\[\d+\] [\d/]+ [\d:.]+ ")

_crypt_lock = threading.Lock()


def find_nats_server() -> str | None:
    """The nats-server binary: on PATH, or in sbin (Debian installs it in /usr/sbin)."""
    return shutil.which("nats-server") or shutil.which("nats-server", path=_SBIN_DIRS)


def bcrypt_hash(password: str, cost: int = BCRYPT_COST) -> str:
    """A bcrypt hash of `password` as nats-server verifies it, made by the system's libcrypt
    (libxcrypt, always on Debian) so that no Python package is needed."""
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise BrokerError(f"cannot load libcrypt ({name}) to hash NATS passwords: {exc}") from None
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    with _crypt_lock:  # both return static buffers
        setting = lib.crypt_gensalt(b"$2b$", cost, None, 0)
        result = lib.crypt(password.encode("utf-8"), setting) if setting else None
    if not result or not result.startswith(b"$2b$"):
        raise BrokerError(f"libcrypt ({name}) cannot make bcrypt hashes for NATS passwords")
    return result.decode("ascii")


def mqtt_to_subject(topic_filter: str) -> str:
    """The NATS subject (filter) an MQTT topic filter is: '/' → '.', '+' → '*', '#' → '>'."""
    levels = []
    for level in topic_filter.split("/"):
        if level in ("+", "#"):
            levels.append("*" if level == "+" else ">")
        elif _SUBJECT_LEVEL.fullmatch(level):
            levels.append(level)
        else:
            raise BrokerError(
                f"topic filter {topic_filter!r} cannot be a NATS permission: each level must be"
                " letters, digits, '-' or '_' (or a wildcard)"
            )
    return ".".join(levels)


def _checked_path(path: Path) -> str:
    text = str(path)
    if not _SAFE_PATH.fullmatch(text) or text != text.strip():
        raise BrokerError(f"nats-server cannot use the path {text!r} (no quotes or backslashes)")
    return text


def _render_user(user: BrokerUser, password_hash: str) -> str:
    # nats-server delivers a QoS 1 subscription through a JetStream consumer to the subject
    # $MQTT.sub.<random>, subscribed with the client's own permissions; MQTT clients themselves
    # cannot subscribe to $MQTT/... (refused, measured), so this grants them nothing more.
    publish = json.dumps([mqtt_to_subject(t) for t in user.publish])
    subscribe = json.dumps([*(mqtt_to_subject(t) for t in user.subscribe), "$MQTT.sub.>"])
    return (
        f"    {{user: {json.dumps(user.username)}, password: {json.dumps(password_hash)},"
        f' allowed_connection_types: ["MQTT"],'
        f" permissions: {{publish: {{allow: {publish}}}, subscribe: {{allow: {subscribe}}}}}}}"
    )


def write_config(
    directory: Path,
    access: BrokerAccess,
    passwords: Mapping[str, str],
    host: str,
    port: int,
    *,
    store_dir: Path | None = None,
    server_name: str | None = None,
) -> Path:
    """Write nats-server.conf (0600) into `directory`; return its path.

    `passwords` maps each username to its password, which must match the user's `$7$` hash in
    `access` (a user without one is left out: nobody can log in as it). The MQTT listener is
    `host`:`port`; NATS's own client port is a kernel-chosen one on loopback. JetStream keeps
    its files in `store_dir` (default: jetstream/ in `directory`).
    """
    if not _SAFE_HOST.fullmatch(host):
        raise BrokerError(f"bad MQTT listen address {host!r}")
    if not 1 <= int(port) <= 65535:
        raise BrokerError(f"bad MQTT port {port} (must be 1..65535)")
    users = []
    for user in access.users:
        password = passwords.get(user.username)
        if password is None:
            continue
        if not verify_password(password, user.password_hash):
            raise BrokerError(
                f"the password given for broker user {user.username!r} does not match its hash"
                " in the access file"
            )
        users.append(_render_user(user, bcrypt_hash(password)))
    directory = Path(directory).resolve()
    store = Path(store_dir).resolve() if store_dir else directory / STORE_DIR_NAME
    name = server_name or f"loa-{int(port)}"
    if not _SUBJECT_LEVEL.fullmatch(name):
        raise BrokerError(f"bad NATS server name {name!r} (letters, digits, '-', '_')")
    lines = [
        "# Written by Loa (broadcast.fleet.brokers.nats); regenerate it instead of editing.",
        f"server_name: {json.dumps(name)}",
        'host: "127.0.0.1"',
        "port: -1",
        f"max_payload: {MAX_PAYLOAD_BYTES}",
        "jetstream {",
        f"  store_dir: {json.dumps(_checked_path(store))}",
        "}",
        "mqtt {",
        f"  host: {json.dumps(host)}",
        f"  port: {int(port)}",
        f"  max_ack_pending: {MAX_ACK_PENDING}",
        f'  ack_wait: "{ACK_WAIT_S}s"',
        "}",
        "authorization {",
        "  users: [",
        *users,
        "  ]",
        "}",
    ]
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_path = directory / CONFIG_NAME
    write_private_file(config_path, "\n".join(lines) + "\n")
    return config_path


class NatsBroker:
    """nats-server (one node, MQTT on JetStream) as a child process with its own directory."""

    def __init__(
        self,
        directory: Path,
        host: str,
        port: int,
        access: BrokerAccess,
        passwords: Mapping[str, str],
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.access = access
        self.passwords = dict(passwords)
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
        """Start nats-server; return once its MQTT listener accepts connections."""
        if self._process is not None:
            raise BrokerError(f"nats-server on {self.address} was already started")
        binary = find_nats_server()
        if binary is None:
            raise BrokerError(MISSING_MESSAGE)
        check_port_free(self.host, self.port)
        config_path = write_config(
            self.directory, self.access, self.passwords, self.host, self.port
        )
        self._log = self.log_path.open("ab")
        log_start = self._log.tell()
        self._process = subprocess.Popen(
            [binary, "-c", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            cwd=self.directory,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            code = self._process.poll()
            if code is not None:
                line = self._error_line(log_start)
                self.stop()
                where = "" if str(config_path) in line else f" (config {config_path})"
                raise BrokerError(
                    f"nats-server for {self.address} exited with code {code}: {line}{where}"
                )
            if accepts_connections(self.host, self.port, timeout_s=0.2):
                break
            if time.monotonic() >= deadline:
                self.stop()
                raise BrokerError(
                    f"nats-server did not listen on {self.address} within {timeout_s:g} s;"
                    f" see {self.log_path}"
                )
            time.sleep(0.05)
        _LOGGER.info(
            "nats-server (pid %d) MQTT on %s, config %s",
            self._process.pid,
            self.address,
            config_path,
        )

    def stop(self, timeout_s: float = 5) -> None:
        """Terminate our own nats-server, kill it if it does not exit; idempotent."""
        process, self._process = self._process, None
        stop_child(process, "nats-server", timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _error_line(self, offset: int) -> str:
        """nats-server's own explanation: its [FTL]/[ERR] lines, else its last line."""
        return log_explanation(
            self.log_path, offset, _LOG_PREFIX, lambda line: line.startswith(("[FTL]", "[ERR]"))
        )


__all__ = ["NatsBroker", "bcrypt_hash", "find_nats_server", "mqtt_to_subject", "write_config"]
