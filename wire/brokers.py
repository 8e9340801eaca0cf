"""Broker addresses and failover between them: the one rule the server and the receiver share.

A link is given a list of brokers (the nodes of a cluster, or one broker: the old single
`host`/`port`). It connects to the first; a connection attempt that fails moves it to the next
broker, and a lost connection is first retried on the same broker for `failover_after_s` (a
3G hiccup or a broker restart should not scatter a village over the cluster), then given up
for the next, which is tried after a first wait afresh. Every retry waits an exponential
backoff with jitter (1 s doubling to 30 s by default, each wait drawn between half and all of
it, so thousands of receivers that lost one node do not all knock on the next one in the same
second); a successful connection resets it.

`Failover` is plain logic with an injectable clock and random source; the paho wiring lives with
each link (`devices.mqtt_link`, `broadcast.sending.dispatcher`), which also keep paho's
persistent session (same client id, `clean_session=False`) on every broker.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

DEFAULT_INITIAL_S = 1.0
DEFAULT_MAX_S = 30.0
DEFAULT_FAILOVER_AFTER_S = 10.0
DEFAULT_JITTER = 0.5

_BRACKETED = re.compile(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


class AddressError(ValueError):
    """A broker address that is not `host:port`; the message says what is wrong with it."""


@dataclass(frozen=True)
class BrokerAddress:
    """One broker: a host name or IP address and a TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str) -> BrokerAddress:
    """`host:port` (`[v6 address]:port` for IPv6) → BrokerAddress; AddressError if malformed."""
    if not isinstance(text, str):
        raise AddressError(f"must be a 'host:port' string, not {text!r}")
    value = text.strip()
    bracketed = _BRACKETED.match(value)
    if bracketed:
        host, port_text = bracketed.groups()
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host:
            raise AddressError(f"must be 'host:port', not {text!r}")
        if not _HOST.match(host):
            raise AddressError(f"has no valid host name in {text!r}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise AddressError(f"must end in a port from 1 to 65535, not {text!r}")
    return BrokerAddress(host, int(port_text))


def parse_address_list(text: str) -> tuple[BrokerAddress, ...]:
    """A comma-separated list (`LOA_MQTT_HOSTS`): at least one address, none twice."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise AddressError("must list at least one 'host:port'")
    addresses = []
    for index, part in enumerate(parts):
        try:
            addresses.append(parse_address(part))
        except AddressError as exc:
            raise AddressError(f"entry {index + 1} {exc}") from None
    return unique(addresses)


def unique(addresses: Sequence[BrokerAddress]) -> tuple[BrokerAddress, ...]:
    """The addresses in order; AddressError naming the first repeated one."""
    seen: set[BrokerAddress] = set()
    for address in addresses:
        if address in seen:
            raise AddressError(f"lists {address} twice")
        seen.add(address)
    return tuple(addresses)


class Backoff:
    """Waits of `initial_s` doubling to `max_s`, each drawn in [(1 - jitter) × w, w]."""

    def __init__(
        self,
        initial_s: float = DEFAULT_INITIAL_S,
        max_s: float = DEFAULT_MAX_S,
        jitter: float = DEFAULT_JITTER,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        if not 0 <= jitter <= 1:
            raise ValueError("backoff jitter must be from 0 to 1")
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self._rng = rng
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.initial_s * 2 ** min(self._attempt, 32))
        self._attempt += 1
        return ceiling * (1 - self.jitter * self._rng())

    def reset(self) -> None:
        self._attempt = 0


class Failover:
    """Which broker a link tries next, and after how long (see the module's docstring).

    Not thread-safe by itself: each link calls it from its network thread only."""

    def __init__(
        self,
        brokers: Sequence[BrokerAddress],
        backoff: Backoff | None = None,
        failover_after_s: float = DEFAULT_FAILOVER_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not brokers:
            raise ValueError("a link needs at least one broker")
        self.brokers = tuple(brokers)
        self.backoff = backoff or Backoff()
        self.failover_after_s = failover_after_s
        self._clock = clock
        self._index = 0
        self._lost_at: float | None = None

    @property
    def current(self) -> BrokerAddress:
        return self.brokers[self._index]

    @property
    def position(self) -> str:
        """`host:port (2/3)`, for log lines."""
        return f"{self.current} ({self._index + 1}/{len(self.brokers)})"

    def connected(self) -> None:
        """The broker accepted us: the next trouble starts the backoff afresh."""
        self.backoff.reset()
        self._lost_at = None

    def lost(self) -> float:
        """An established connection dropped: retry the same broker after the returned wait."""
        self._lost_at = self._clock()
        return self.backoff.next_delay()

    def failed(self) -> float:
        """A connection attempt failed; the returned wait comes before the next attempt.

        Never connected (or already moved on): the next broker. A broker that lost us is
        retried only while the retry still falls within `failover_after_s` of the loss; once
        the next wait would outlast that, it is given up at once and the next broker is tried
        after a first wait afresh (it has not failed us). Carrying on the wait grown on the
        lost broker put the next attempt 18–55 s after a node's death (p50 25 s; the server,
        capped at 15 s, 18–38 s), not about `failover_after_s`; now it comes 4–11 s after
        (10 s grace, 2,000 draws; tests/e2e/test_nats_cluster_faults.py saw the server take
        34 s before)."""
        delay = self.backoff.next_delay()
        if self._lost_at is None:
            self._index = (self._index + 1) % len(self.brokers)
            return delay
        if len(self.brokers) == 1 or delay <= self._lost_at + self.failover_after_s - self._clock():
            return delay
        self._lost_at = None
        self._index = (self._index + 1) % len(self.brokers)
        self.backoff.reset()
        return self.backoff.next_delay()


def aim_reconnect(client: mqtt.Client, address: BrokerAddress, delay_s: float) -> bool:
    """Make paho's next automatic reconnect go to `address` after `delay_s`; True if that is
    another broker than the last one.

    Called from the callbacks paho runs just before its reconnect wait (`on_disconnect`,
    `on_connect_fail`). paho has no public way to change a client's broker between its own
    retries (its `host` setter refuses while it reconnects), so its two fields are set; the
    client id, session flag, will and queued QoS 1 messages stay as they are."""
    moved = (address.host, address.port) != (client.host, client.port)
    if moved:
        client._host, client._port = address.host, address.port
    client.reconnect_delay_set(delay_s, delay_s)  # type: ignore[arg-type]
    return moved
