"""Broker address lists and the failover rule the receiver and the server share (wire.brokers),
and the receiver config's `mqtt.hosts`."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from wire.brokers import (
    AddressError,
    Backoff,
    BrokerAddress,
    Failover,
    parse_address,
    parse_address_list,
)
from wire.config import ConfigError, ReceiverConfig

A, B, C = (
    BrokerAddress("node1", 1883),
    BrokerAddress("node2", 1883),
    BrokerAddress("10.0.0.3", 8883),
)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("node1:1883", A),
        (" 10.0.0.3:8883 ", C),
        ("mqtt.xa.example.vn:8883", BrokerAddress("mqtt.xa.example.vn", 8883)),
        ("[::1]:1883", BrokerAddress("::1", 1883)),
    ],
)
def test_addresses_parse(text: str, address: BrokerAddress) -> None:
    assert parse_address(text) == address
    assert parse_address(str(address)) == address


@pytest.mark.parametrize(
    "text", ["node1", "node1:", ":1883", "node1:0", "node1:65536", "node1:x", "a b:1", "::1:1883"]
)
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


def test_a_comma_separated_list_keeps_order_and_refuses_repeats() -> None:
    assert parse_address_list("node1:1883, node2:1883,") == (A, B)
    with pytest.raises(AddressError, match="entry 2"):
        parse_address_list("node1:1883,node2")
    with pytest.raises(AddressError, match="twice"):
        parse_address_list("node1:1883,node1:1883")
    with pytest.raises(AddressError, match="at least one"):
        parse_address_list(" , ")


def test_backoff_doubles_to_its_cap_with_jitter_below_each_step() -> None:
    exact = Backoff(1.0, 30.0, jitter=0.0)
    assert [exact.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    exact.reset()
    assert exact.next_delay() == 1
    low = Backoff(1.0, 30.0, jitter=0.5, rng=lambda: 1.0)  # the shortest draw: half the step
    assert [low.next_delay() for _ in range(7)] == [0.5, 1, 2, 4, 8, 15, 15]
    drawn = Backoff()
    for ceiling in (1, 2, 4, 8, 16, 30, 30):
        assert ceiling / 2 <= drawn.next_delay() <= ceiling


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_failed_attempts_move_on_and_a_lost_broker_gets_its_grace() -> None:
    clock = Clock()
    failover = Failover((A, B, C), Backoff(jitter=0.0), failover_after_s=10.0, clock=clock)
    assert failover.current == A
    # never connected: each failed attempt moves to the next broker, round the list
    assert [failover.failed() for _ in range(4)] == [1, 2, 4, 8]
    assert failover.current == B and failover.position == "node2:1883 (2/3)"
    failover.connected()
    # a lost connection is retried on the same broker while it is recent...
    assert failover.lost() == 1
    clock.now += 3
    assert failover.failed() == 2 and failover.current == B
    # ...and given up once it has not come back within failover_after_s: the next broker has
    # not failed us, so its first wait starts afresh
    clock.now += 7
    assert failover.failed() == 1 and failover.current == C
    assert failover.failed() == 2 and failover.current == A


def test_a_lost_broker_is_given_up_when_the_next_wait_would_outlast_its_grace() -> None:
    """Not on the first failure after the grace (the backoff grown meanwhile, up to `max_s`,
    would come on top): a node SIGKILLed under the server left it 34 s without a broker."""
    clock = Clock()
    failover = Failover((A, B), Backoff(jitter=0.0), failover_after_s=10.0, clock=clock)
    failover.connected()
    waits = [failover.lost()]
    while failover.current == A:
        clock.now += waits[-1]
        waits.append(failover.failed())
    # retried at 1, 3 and 7 s; a wait of 8 s would end at 15 s: B is tried 1 s later
    assert waits == [1, 2, 4, 1] and clock.now == 107
    one = Failover((A,), Backoff(jitter=0.0), failover_after_s=10.0, clock=clock)
    one.connected()
    waits = [one.lost()]
    for _ in range(5):  # with one broker there is nowhere to go: the backoff keeps growing
        clock.now += waits[-1]
        waits.append(one.failed())
    assert waits == [1, 2, 4, 8, 16, 30]


def test_one_broker_stays_put() -> None:
    failover = Failover((A,), Backoff(jitter=0.0))
    assert [failover.failed() for _ in range(3)] == [1, 2, 4]
    assert failover.current == A


def config_data(**mqtt: Any) -> dict[str, Any]:
    login = {"username": "loa-thon-1-01", "password": "pw", **mqtt}
    return {
        "device_id": "loa-thon-1-01",
        "zones": ["thon-1"],
        "mqtt": login,
        "server_public_key": "k",
        "data_dir": "/var/lib/loa",
    }


def test_config_hosts_round_trip_and_the_old_form_is_a_list_of_one() -> None:
    old = ReceiverConfig.from_dict(config_data(host="node1", port=1883))
    assert old.mqtt.brokers == (A,)
    assert "hosts" not in old.to_dict()["mqtt"]  # written as it always was

    data = config_data(hosts=["node1:1883", "node2:1883", "10.0.0.3:8883"], failover_after_s=2)
    config = ReceiverConfig.from_dict(data)
    assert config.mqtt.brokers == (A, B, C)
    assert (config.mqtt.host, config.mqtt.port) == ("node1", 1883)  # what an old agent reads
    assert config.mqtt.failover_after_s == 2
    written = json.loads(json.dumps(config.to_dict()))
    assert written["mqtt"]["hosts"] == data["mqtt"]["hosts"]
    assert ReceiverConfig.from_dict(written) == config

    one = ReceiverConfig.from_dict(config_data(hosts=["node1:1883"]))
    assert one == old


@pytest.mark.parametrize(
    ("hosts", "field"),
    [
        (["node1:1883", "node2"], "mqtt.hosts[1]"),
        (["node1:1883", 1883], "mqtt.hosts[1]"),
        (["node1:99999"], "mqtt.hosts[0]"),
        ([], "mqtt.hosts"),
        ("node1:1883", "mqtt.hosts"),
        (["node1:1883", "node1:1883"], "mqtt.hosts"),
    ],
)
def test_config_hosts_errors_name_the_field_and_index(hosts: Any, field: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"loa.json: field '{field}'")):
        ReceiverConfig.from_dict(config_data(hosts=hosts), source="loa.json")
