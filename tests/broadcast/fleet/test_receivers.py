"""Receivers at scale: the health rule, and the counts and pages read in SQL."""

from __future__ import annotations

import math
import time

import pytest
from service_support import Users, add_devices

from broadcast.fleet import receivers, registry
from broadcast.fleet.brokers import BrokerAccess
from broadcast.people import zones
from broadcast.sending import broadcasts
from broadcast.service import BroadcastService
from broadcast.store.models import Device, Zone
from wire.config import ReceiverConfig
from wire.protocol import DeviceStatus, ReceiverState

FLEET = {
    "loa-a-01": "thon-a",
    "loa-a-02": "thon-a",
    "loa-a-03": "thon-a",
    "loa-b-01": "thon-b",
    "loa-b-02": "thon-b",
}


@pytest.mark.parametrize(
    ("extra", "healthy"),
    [
        ({}, True),  # an old receiver that reports nothing is no alarm
        ({"cache_complete": 1.0, "clock_offset_s": -4.9}, True),
        ({"cache_complete": 0.5}, False),
        ({"clock_offset_s": 5.1}, False),
        ({"clock_offset_s": -12.0, "cache_complete": 1}, False),
        ({"cache_complete": "1", "clock_offset_s": math.nan}, True),  # not numbers: unknown
        ({"cache_complete": True}, True),
    ],
)
def test_health_rule(extra: dict, healthy: bool) -> None:  # type: ignore[type-arg]
    assert receivers.health_ok(extra) is healthy


def _heartbeat(
    service: BroadcastService, device_id: str, state: ReceiverState, **extra: float
) -> None:
    with service.db.session() as session:
        status = DeviceStatus(device_id, state, "boot-1", time.time(), extra=dict(extra))
        broadcasts.apply_status(session, status)


def test_counts_and_attention_follow_the_heartbeats(
    service: BroadcastService, users: Users
) -> None:
    add_devices(service, FLEET)
    _heartbeat(service, "loa-a-01", ReceiverState.PLAYING, cache_complete=1.0)
    _heartbeat(service, "loa-a-02", ReceiverState.IDLE, cache_complete=0.5)
    _heartbeat(service, "loa-a-03", ReceiverState.IDLE, clock_offset_s=30.0)
    _heartbeat(service, "loa-b-01", ReceiverState.IDLE, cache_complete=1.0)
    # loa-b-02 never reported: offline
    with service.db.session() as session:
        counts = receivers.counts_by_zone(session, None)
        assert counts == [
            receivers.ZoneCounts("thon-a", total=3, online=3, playing=1, attention=2),
            receivers.ZoneCounts("thon-b", total=2, online=1, playing=0, attention=1),
        ]
        attention = receivers.needing_attention(session, None, limit=10)
        assert [d.id for d in attention] == ["loa-b-02", "loa-a-02", "loa-a-03"]  # offline first
        assert [d.id for d in receivers.needing_attention(session, None, limit=1)] == ["loa-b-02"]
        village_a = zones.subtree_ids(session, [session.get(Zone, "thon-a")])
        assert village_a == {"thon-a"}
        assert [c.zone_id for c in receivers.counts_by_zone(session, village_a)] == ["thon-a"]
        assert [d.id for d in receivers.list_devices(session, village_a, offset=0, limit=9)] == [
            "loa-a-01",
            "loa-a-02",
            "loa-a-03",
        ]
        assert zones.subtree_ids(session, [session.get(Zone, "xa-test")]) is None  # every zone

    # healthy again at its next heartbeat; offline at its last will
    _heartbeat(service, "loa-a-02", ReceiverState.IDLE, cache_complete=1.0)
    _heartbeat(service, "loa-a-01", ReceiverState.OFFLINE)
    with service.db.session() as session:
        assert session.get(Device, "loa-a-02").health_ok
        attention = receivers.needing_attention(session, None, limit=10)
        assert [d.id for d in attention] == ["loa-a-01", "loa-b-02", "loa-a-03"]


def test_a_page_of_receivers_and_the_total(service: BroadcastService, users: Users) -> None:
    add_devices(service, FLEET)
    _heartbeat(service, "loa-b-01", ReceiverState.IDLE)
    with service.db.session() as session:
        first = receivers.list_devices(session, None, offset=0, limit=2)
        last = receivers.list_devices(session, None, offset=4, limit=2)
        assert ([d.id for d in first], receivers.count_devices(session, None)) == (
            ["loa-a-01", "loa-a-02"],
            5,
        )
        assert [d.id for d in last] == ["loa-b-02"]
        online = receivers.list_devices(session, {"thon-b"}, offset=0, limit=10, online=True)
        assert ([d.id for d in online], receivers.count_devices(session, {"thon-b"}, True)) == (
            ["loa-b-01"],
            1,
        )
        nowhere = receivers.list_devices(session, set(), offset=0, limit=10)
        assert (nowhere, receivers.count_devices(session, set())) == ([], 0)


def _listening(
    service: BroadcastService, device_id: str, zone_ids: list[str], refused: list[str] = ()
) -> None:
    """A heartbeat of a receiver whose config subscribes to `zone_ids`."""
    with service.db.session() as session:
        extra = {"cache_complete": 1.0, "zones": zone_ids, "refused_topics": list(refused)}
        status = DeviceStatus(device_id, ReceiverState.IDLE, "boot-1", time.time(), extra=extra)
        broadcasts.apply_status(session, status)


def _attention(service: BroadcastService) -> dict[str, receivers.ZoneCheck]:
    with service.db.session() as session:
        return {
            device.id: receivers.zone_check(device)
            for device in receivers.needing_attention(session, None, limit=10)
        }


def test_a_receiver_deaf_to_its_zones_needs_attention(
    service: BroadcastService, users: Users
) -> None:
    """The server compares the zones a receiver's heartbeat says it listens to (and the
    subscriptions the broker refused) with the zones it is registered in, and the zones the
    broker's access list allows it: any gap is a receiver needing attention."""
    add_devices(service, {"loa-a-01": "thon-a", "loa-b-01": "thon-b"})
    _heartbeat(service, "loa-b-01", ReceiverState.IDLE, cache_complete=1.0)  # an older receiver
    _listening(service, "loa-a-01", ["thon-a", "xa-test"])
    assert _attention(service) == {}

    # moved to thon-b in the database, its config (on the Pi) still says thon-a
    with service.db.session() as session:
        session.get(Device, "loa-a-01").zone_id = "thon-b"
    _listening(service, "loa-a-01", ["thon-a", "xa-test"])
    found = _attention(service)["loa-a-01"]
    assert (found.not_listening, found.listening_elsewhere) == (("thon-b",), ("thon-a",))
    assert not found.config_ok

    # the config is refreshed and copied; the broker's access list still has thon-a: amqtt
    # refuses the subscription, mosquitto grants it and drops what it carries
    with service.db.session() as session:
        session.get(Device, "loa-a-01").broker_zones = ["thon-a", "xa-test"]
    _listening(service, "loa-a-01", ["thon-b", "xa-test"])
    found = _attention(service)["loa-a-01"]
    assert found.config_ok and found.not_allowed == ("thon-b",)
    _listening(service, "loa-a-01", ["thon-b", "xa-test"], ["loa/v1/zone/thon-b/cmd"])
    assert _attention(service)["loa-a-01"].refused_topics == ("loa/v1/zone/thon-b/cmd",)

    # `loa mqtt-config` (or the embedded broker's access file) writes the list again: healthy
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
        registry.record_broker_access(session, access)
        assert session.get(Device, "loa-a-01").broker_zones == ["thon-b", "xa-test"]
    _listening(service, "loa-a-01", ["thon-b", "xa-test"])
    assert _attention(service) == {}


def test_a_stale_access_list_is_seen_without_a_heartbeat(
    service: BroadcastService, users: Users
) -> None:
    """Writing an access list that does not let a receiver hear its zones flags it at once."""
    add_devices(service, {"loa-a-01": "thon-a"})
    _listening(service, "loa-a-01", ["thon-a", "xa-test"])
    with service.db.session() as session:
        stale = registry.broker_access(session, service.secrets.mqtt_password)
        others = tuple(user for user in stale.users if user.username != "loa-a-01")
        registry.record_broker_access(session, BrokerAccess(others))
    found = _attention(service)["loa-a-01"]
    assert found.not_allowed == ("thon-a", "xa-test")


def test_refreshing_a_moved_receivers_config_says_the_broker_is_behind(
    service: BroadcastService, users: Users
) -> None:
    add_devices(service, {"loa-a-01": "thon-a"})
    with service.db.session() as session:  # `loa mqtt-config` ran; then the receiver moved
        access = registry.broker_access(session, service.secrets.mqtt_password)
        registry.record_broker_access(session, access)
        session.get(Device, "loa-a-01").zone_id = "thon-b"
    [refreshed] = service.fleet.refresh_device_configs(["loa-a-01"])
    assert refreshed.broker_behind and not refreshed.new_password
    assert ReceiverConfig.load(refreshed.path).zones == ["thon-b", "xa-test"]
