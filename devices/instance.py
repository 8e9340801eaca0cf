"""One running agent per data directory.

Two agents on one data directory would share a login, and a login is bound to its client id,
so each would take the broker session from the other over and over while both wrote the same
replay memory and programme. The agent holds an exclusive `flock` on `<data_dir>/agent.lock`
while it runs (the kernel drops it when the process ends, even by SIGKILL or a power cut), with
its pid inside for the person who finds it; `loa doctor --config` asks the same lock whether an
agent is running before it logs in as the receiver, which would disconnect that agent.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from wire.config import ConfigError

LOCK_FILE = "agent.lock"


class AgentAlreadyRunning(ConfigError):
    """Another agent holds this data directory."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"data_dir {data_dir}: a receiver agent ({who}) is already running on it; "
            "stop it first (systemctl stop loa-receiver), or give this one its own data_dir"
        )
        self.pid = pid


class InstanceLock:
    """The agent's hold on its data directory, from `acquire` to `release`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write our pid, or raise AgentAlreadyRunning."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AgentAlreadyRunning(self.path.parent, _read_pid(self.path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.ftruncate(fd, 0)
        os.close(fd)


def running_pid(data_dir: Path) -> int | None:
    """The pid of the agent running on `data_dir` (0 when its pid is unreadable), or None when
    no agent holds it. Takes and drops the lock when it is free, so it never blocks an agent
    for longer than that."""
    path = Path(data_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(path) or 0
    finally:
        os.close(fd)
    return None


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
