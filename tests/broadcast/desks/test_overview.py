"""The overview desk: the dashboard, the zones and the receivers a user may see, as plain
records read in the desk's own session."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import datetime

import pytest
from service_support import Province, Users, add_devices

from broadcast import clock
from broadcast.desks import overview
from broadcast.desks.records import BroadcastRecord, DeviceRecord
from broadcast.errors import PermissionDenied, ValidationError
from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast, Bulletin, Delivery, Device, Schedule, User

RECEIVERS = {"loa-a-01": "thon-a", "loa-a-02": "thon-a", "loa-b-01": "thon-b"}
NOW = clock.parse_local("2030-01-07 12:00", "now")  # a Monday, noon in Vietnam


@pytest.fixture
def fleet(service: BroadcastService, users: Users) -> Users:
    """Three receivers (one playing with a full cache and a clock 9 s off), a daily bulletin
    at 06:00 and 18:00 in each village, and an announcement to Thôn B."""
    add_devices(service, RECEIVERS)
    with service.db.session() as session:
        device = session.get(Device, "loa-a-01")
        assert device is not None
        device.online, device.state = True, "playing"
        device.status_extra = {"cache_complete": 1.0, "clock_offset_s": 9.0, "cpu_temp_c": "x"}
        device.health_ok = False  # as its heartbeat would have it: the clock is off
        for village, at in (("thon-a", "06:00"), ("thon-b", "18:00")):
            bulletin = Bulletin(title=f"Tin {village}", text="Tin", status="approved")
            session.add(bulletin)
            session.flush()
            session.add(
                Schedule(
                    bulletin_id=bulletin.id,
                    kind="daily",
                    time_of_day=at,
                    zone_ids=[village],
                    priority="normal",
                    created_at=datetime(2020, 1, 1),
                )
            )
        broadcast = Broadcast(
            title="Họp thôn B",
            text="Họp thôn B",
            priority="emergency",
            zone_ids=["thon-b"],
            source="announcement",
            status="finished",
            created_by_id=users.officer,
        )
        session.add(broadcast)
        session.flush()
        session.add(Delivery(broadcast_id=broadcast.id, device_id="loa-b-01", state="finished"))
    return users


def test_the_dashboard_of_the_commune(service: BroadcastService, fleet: Users) -> None:
    shown = service.overview.dashboard(fleet.officer, NOW)
    assert (shown.total, shown.online, shown.playing, shown.large) == (3, 1, 1, False)
    assert [device.id for device in shown.listed] == sorted(RECEIVERS)
    first = shown.listed[0]
    assert isinstance(first, DeviceRecord) and first.state == "playing"
    assert first.health.cache_ok and not first.health.clock_ok and first.cpu_temp_c is None
    assert first.zone_check.expected == ("thon-a", "xa-test")
    with pytest.raises(FrozenInstanceError):
        first.state = "idle"  # type: ignore[misc]
    assert [(row.title, row.done, row.zone_ids) for row in shown.today] == [
        ("Tin thon-a", True, ("thon-a",)),
        ("Tin thon-b", False, ("thon-b",)),
    ]
    assert [row.broadcast_id for row in shown.today] == [None, None]  # not planned yet
    [recent] = shown.recent
    assert isinstance(recent, BroadcastRecord) and recent.title == "Họp thôn B"
    assert recent.deliveries == ()  # a list needs none of them
    assert shown.zone_names["thon-a"].startswith("Thôn A")


def test_a_village_head_sees_their_village(service: BroadcastService, fleet: Users) -> None:
    shown = service.overview.dashboard(fleet.head_1, NOW)
    assert shown.total == 2 and [device.zone_id for device in shown.listed] == ["thon-a"] * 2
    assert [row.title for row in shown.today] == ["Tin thon-a"]
    assert shown.recent == []  # Thôn B's announcement did not sound in Thôn A
    with service.db.session() as session:
        session.get(User, fleet.viewer).active = False  # type: ignore[union-attr]
    with pytest.raises(PermissionDenied):
        service.overview.dashboard(fleet.viewer, NOW)


def test_a_large_network_lists_zones_and_receivers_needing_attention(
    service: BroadcastService, fleet: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(overview, "FULL_LIST_UP_TO", 2)
    shown = service.overview.dashboard(fleet.admin, NOW)
    assert shown.large and {zone.zone_id for zone in shown.zone_summaries} == {"thon-a", "thon-b"}
    assert {device.id for device in shown.listed} == {"loa-a-01", "loa-a-02", "loa-b-01"}
    with service.db.session() as session:
        for device_id in ("loa-a-02", "loa-b-01"):
            device = session.get(Device, device_id)
            assert device is not None
            device.online, device.health_ok = True, True
    assert [device.id for device in service.overview.dashboard(fleet.admin, NOW).listed] == [
        "loa-a-01"  # its clock is off
    ]


def test_zones_and_receivers_a_page_at_a_time(service: BroadcastService, fleet: Users) -> None:
    desk = service.overview
    assert {zone.id for zone in desk.zones(fleet.officer)} == {"xa-test", "thon-a", "thon-b"}
    [own] = desk.zones(fleet.head_1)
    assert (own.id, own.device_ids) == ("thon-a", ("loa-a-01", "loa-a-02"))
    page, total = desk.receivers(fleet.officer, offset=1, limit=1)
    assert [device.id for device in page] == ["loa-a-02"] and total == 3
    page, total = desk.receivers(fleet.officer, zone_id="thon-b")
    assert [device.id for device in page] == ["loa-b-01"] and total == 1
    page, total = desk.receivers(fleet.officer, online=True)
    assert [device.id for device in page] == ["loa-a-01"] and total == 1
    assert desk.receivers(fleet.head_1)[1] == 2
    for zone_id in ("thon-b", "nowhere"):  # another village, or none: the same answer
        with pytest.raises(ValidationError) as refused:
            desk.receivers(fleet.head_1, zone_id=zone_id)
        assert refused.value.field == "zone"


def test_a_province_s_large_dashboard_counts_per_commune(
    service: BroadcastService, province: Province, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A province's five hundred villages would be five hundred rows: its communes are summed."""
    monkeypatch.setattr(overview, "FULL_LIST_UP_TO", 0)
    add_devices(service, {"loa-an-2": province.village_a2, "loa-binh-2": province.village_b})
    shown = service.overview.dashboard(province.province_editor, NOW)
    assert shown.large and shown.total == 4
    assert [(zone.zone_id, zone.total, zone.attention) for zone in shown.zone_summaries] == [
        (province.commune_a, 2, 2),  # never reported: offline, so needing attention
        (province.commune_b, 2, 2),
    ]
    # one commune's account still counts per village
    shown = service.overview.dashboard(province.admin_a, NOW)
    assert {zone.zone_id for zone in shown.zone_summaries} == {
        province.village_a,
        province.village_a2,
    }
