"""The production broker: mosquitto 2, configured from the same `BrokerAccess` as the embedded one.

`write_config` renders mosquitto.conf + passwd + acl (all 0600) into one directory: a listener on
host:port only, no anonymous access, per-user ACLs, persistence inside that directory (so QoS 1
commands queued for offline receivers survive a broker restart). `MosquittoBroker` runs the
Debian `mosquitto` binary with that config as a child process (tests, single-machine installs);
a systemd-managed mosquitto can use the very same files.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import IO

from broadcast.brokers.access import BrokerAccess, BrokerError, write_private_file
from broadcast.brokers.net import accepts_connections, check_port_free, format_address

_LOGGER = logging.getLogger(__name__)

CONFIG_NAME = "mosquitto.conf"
PASSWORD_FILE_NAME = "passwd"
ACL_FILE_NAME = "acl"
LOG_FILE_NAME = "mosquitto.log"
PERSISTENCE_FILE_NAME = "mosquitto.db"
MISSING_MESSAGE = "mosquitto not found: install the Debian package 'mosquitto'"
_SBIN_DIRS = "/usr/sbin:/usr/local/sbin:/sbin"
# mosquitto reads a config value up to the end of the line; keep paths and hosts to one plain line
_SAFE_VALUE = re.compile(r"^[^\s#\x00-\x1f\x7f]+$")
_SAFE_PATH = re.compile(r"^[^\n\r\x00]+$")
_TIMESTAMP = re.compile(r"^(\d+|\d{4}-\d\d-\d\dT[\d:]+): ")


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


def _render_passwords(access: BrokerAccess) -> str:
    return "".join(f"{user.username}:{user.password_hash}\n" for user in access.users)


def write_config(
    directory: Path, access: BrokerAccess, host: str, port: int, persistence: bool = True
) -> Path:
    """Write mosquitto.conf, passwd and acl (0600) into `directory`; return the .conf path."""
    if not _SAFE_VALUE.fullmatch(host):
        raise BrokerError(f"bad MQTT listen address {host!r}")
    if not 1 <= int(port) <= 65535:
        raise BrokerError(f"bad MQTT port {port} (must be 1..65535)")
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_path = directory / CONFIG_NAME
    password_path = directory / PASSWORD_FILE_NAME
    acl_path = directory / ACL_FILE_NAME
    write_private_file(password_path, _render_passwords(access))
    write_private_file(acl_path, _render_acl(access))
    lines = [
        "# Written by Loa (broadcast.brokers.mosquitto); regenerate it instead of editing.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {_checked_path(password_path)}",
        f"acl_file {_checked_path(acl_path)}",
        f"listener {int(port)} {host}",
        "set_tcp_nodelay true",
        f"persistence {'true' if persistence else 'false'}",
        # mosquitto wants the trailing slash on a persistence directory
        f"persistence_location {_checked_path(directory)}/",
        f"persistence_file {PERSISTENCE_FILE_NAME}",
        "autosave_interval 60",
        # The server's answer-back session hears every receiver: a commune-wide emergency is
        # hundreds of events at once, well past mosquitto's default queue of 1,000 per client.
        "max_queued_messages 100000",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "connection_messages true",
    ]
    if os.geteuid() == 0:
        # As root mosquitto switches to the 'mosquitto' user, who cannot read these 0600 files;
        # run it as the user who owns them, i.e. with the privileges of whoever started Loa.
        lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
    write_private_file(config_path, "\n".join(lines) + "\n")
    return config_path


class MosquittoBroker:
    """mosquitto as a child process with its own config directory; stopped by its own handle."""

    def __init__(self, directory: Path, host: str, port: int, access: BrokerAccess) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.access = access
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
        check_port_free(self.host, self.port)
        config_path = write_config(self.directory, self.access, self.host, self.port)
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
            if accepts_connections(self.host, self.port, timeout_s=0.2):
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
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _LOGGER.warning("mosquitto (pid %d) ignored SIGTERM, killing it", process.pid)
                process.kill()
                process.wait(timeout=timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _error_line(self, offset: int) -> str:
        """mosquitto's own explanation: its 'Error' lines (timestamps cut), else its last line."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(offset)
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return f"no output (see {self.log_path})"
        lines = [_TIMESTAMP.sub("", line).strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        errors = [line for line in lines if "error" in line.lower()]
        if errors:
            return " ".join(errors[-3:])
        return lines[-1] if lines else f"no output (see {self.log_path})"
