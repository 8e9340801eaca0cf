"""Receivers at scale: the health rule, and the counts and pages read in SQL."""

from __future__ import annotations

import math
import time

import pytest
from service_support import Users, add_devices

from broadcast import broadcasts, receivers, zones
from broadcast.models import Device, Zone
from broadcast.service import BroadcastService
from devices.protocol import DeviceStatus, ReceiverState

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
