"""The receiver speaks systemd's notify protocol: READY, watchdog pings only while healthy."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices import systemd


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def test_notify_reaches_the_socket_and_is_quiet_outside_systemd(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": path})
    assert sock.recv(100) == b"READY=1"
    assert not systemd.notify("READY=1", {})
    assert not systemd.notify("READY=1", {"NOTIFY_SOCKET": path + "-gone"})


def test_watchdog_pings_at_half_the_interval_and_only_when_healthy(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}
    watchdog = systemd.Watchdog(env)
    assert watchdog.interval_s == 5.0
    assert watchdog.ping(True, now=100.0) and sock.recv(100) == b"WATCHDOG=1"
    assert not watchdog.ping(True, now=102.0)  # not due yet
    assert not watchdog.ping(False, now=106.0)  # due, but a thread is dead: let systemd act
    assert watchdog.ping(True, now=106.0)
    other = systemd.Watchdog({**env, "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.interval_s is None and not other.ping(True)  # meant for another process
    assert systemd.Watchdog({}).interval_s is None
