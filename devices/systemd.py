"""systemd's notify protocol (sd_notify), without a dependency: READY, the watchdog, STOPPING.

Under `Type=notify` with `WatchdogSec=`, systemd restarts the receiver when its pings stop:
`run_agents` pings only while every agent is healthy (its conductor thread alive, no fatal
error), so a hung or crashed scheduler thread gets the process restarted, not just a crashed
process. Outside systemd (no NOTIFY_SOCKET) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time

_LOGGER = logging.getLogger(__name__)


def notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1") to systemd; False when not run by systemd or it failed."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # the abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        _LOGGER.warning("could not notify systemd (%s): %s", state, exc)
        return False
    return True


class Watchdog:
    """Pings systemd at half its WatchdogSec, and only while the caller says all is well."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._env = dict(os.environ if environ is None else environ)
        usec = self._env.get("WATCHDOG_USEC", "")
        pid = self._env.get("WATCHDOG_PID", "")
        meant_for_us = not pid or pid == str(os.getpid())
        self.interval_s = int(usec) / 2e6 if usec.isdigit() and meant_for_us else None
        self._last = 0.0

    def ping(self, healthy: bool, now: float | None = None) -> bool:
        """Ping if due and healthy; True when a ping was sent."""
        if self.interval_s is None or not healthy:
            return False
        moment = time.monotonic() if now is None else now
        if moment - self._last < self.interval_s:
            return False
        self._last = moment
        return notify("WATCHDOG=1", self._env)
