"""Small socket helpers shared by the broker back-ends: is a port free, is a broker listening.

Both exist so a taken port or a broker that never came up is reported as one clear line naming
host:port instead of a traceback from deep inside a broker.
"""

from __future__ import annotations

import errno
import logging
import socket
import time

from broadcast.fleet.brokers.access import BrokerError

_LOGGER = logging.getLogger(__name__)


def format_address(host: str, port: int) -> str:
    """`host:port`, with IPv6 literals in brackets as people type them."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_error(host: str, port: int) -> OSError | None:
    """Try to bind `host:port` the way a broker would (SO_REUSEADDR); return the error, if any."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return OSError(errno.EADDRNOTAVAIL, f"cannot resolve host {host!r}: {exc.strerror}")
    last: OSError | None = None
    for family, kind, proto, _name, address in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
            return None
        except OSError as exc:
            last = exc
    return last


def port_is_free(host: str, port: int) -> bool:
    """True if a broker could listen on `host:port` right now."""
    return bind_error(host, port) is None


def check_port_free(host: str, port: int) -> None:
    """Raise BrokerError (one line naming host:port) unless a broker could listen there."""
    error = bind_error(host, port)
    if error is None:
        return
    where = format_address(host, port)
    if error.errno == errno.EADDRINUSE:
        raise BrokerError(f"MQTT port {where} is already in use")
    if error.errno == errno.EACCES:
        raise BrokerError(f"not allowed to listen on MQTT port {where} (below 1024 needs root)")
    raise BrokerError(f"cannot listen on MQTT {where}: {error.strerror or error}")


def accepts_connections(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True if something accepts a TCP connection on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """Poll until `host:port` accepts connections or `timeout_s` passes; returns which."""
    deadline = time.monotonic() + timeout_s
    while True:
        if accepts_connections(host, port):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
