"""The province report on a hand-counted October 2025 (`province_support.seed_october`), who
may read it, and that its queries do not grow with the province."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from province_support import MONTH, YEAR, seed_october, seed_province
from service_support import PASSWORD, Users, add_devices
from support import sql_statements

from broadcast.const import Role, ZoneKind
from broadcast.desks.province_reports import CommuneFigures, ProvinceBulletinCounts
from broadcast.errors import NotFound, PermissionDenied
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast, Delivery


@pytest.fixture
def ids(service: BroadcastService, users: Users) -> dict[str, int]:
    found = seed_province(service)
    seed_october(service)
    return found


def _rows(service: BroadcastService, user_id: int, **kwargs: str) -> dict[str, CommuneFigures]:
    found = service.province_reports.report(user_id, YEAR, MONTH, **kwargs)
    return {row.zone_id: row for row in found.communes}


def test_each_commune_counted_by_hand(service: BroadcastService, ids: dict[str, int]) -> None:
    report = service.province_reports.report(ids["tinh"], YEAR, MONTH)
    assert report.province_id == "tinh-test"
    assert report.label == "10/2025"
    assert [row.zone_id for row in report.communes] == ["xa-ba", "xa-hai", "xa-test"]
    rows = {row.zone_id: row for row in report.communes}

    xa = rows["xa-test"]
    assert (xa.receivers, xa.online, xa.attention) == (3, 2, 2)
    # p1 (relay, 600 s) and p2 (a planned run, the schedule's 120 s); p5 is September's
    assert (xa.broadcasts, xa.cancelled) == (2, 0)
    assert xa.by_priority == {"emergency": 1, "priority": 0, "normal": 1}
    assert xa.minutes == pytest.approx(12.0)
    assert xa.unknown_airtime == 0
    # p1: finished, failed, stopped (left out); p2: two finished
    assert (xa.targeted, xa.finished, xa.delivery_rate) == (4, 3, 0.75)
    assert xa.code is None

    hai = rows["xa-hai"]
    assert (hai.receivers, hai.online, hai.attention) == (1, 0, 1)
    assert (hai.broadcasts, hai.cancelled) == (3, 1)  # p1, p3 (cancelled), p6
    assert hai.by_priority == {"emergency": 0, "priority": 2, "normal": 1}
    assert hai.minutes == pytest.approx(10.0)  # p1; p3 never played; p6's length unknown
    assert hai.unknown_airtime == 1
    assert (hai.targeted, hai.finished, hai.delivery_rate) == (2, 2, 1.0)
    assert hai.code == "99002"

    ba = rows["xa-ba"]
    assert (ba.receivers, ba.broadcasts, ba.targeted, ba.minutes) == (0, 0, 0, 0.0)
    assert ba.delivery_rate is None
    # offline time only when asked (the monthly report; the dashboard does without)
    assert {row.offline_hours for row in report.communes} == {None}
    assert report.total.offline_hours is None


def test_offline_time_by_hand(service: BroadcastService, ids: dict[str, int]) -> None:
    """`reporting`'s rule: loa-a-01 4 h + loa-a-02 0 + loa-b-01 744 h; loa-c-01 24 h."""
    report = service.province_reports.report(ids["tinh"], YEAR, MONTH, offline=True)
    hours = {row.zone_id: row.offline_hours for row in report.communes}
    assert hours == {
        "xa-ba": 0.0,
        "xa-hai": pytest.approx(24.0),
        "xa-test": pytest.approx(748.0),
    }
    assert report.total.offline_hours == pytest.approx(772.0)
    khac = service.province_reports.report(ids["admin"], YEAR, MONTH, "tinh-khac", offline=True)
    assert khac.communes[0].offline_hours == pytest.approx(744.0)  # by its change after


def test_offline_time_agrees_with_the_commune_report(
    service: BroadcastService, ids: dict[str, int]
) -> None:
    """The drill-down shows the same hours (reporting.Reports.monthly_summary)."""
    province = service.province_reports.report(ids["tinh"], YEAR, MONTH, offline=True)
    for row in province.communes:
        commune = service.reports.monthly_summary(ids["tinh"], YEAR, MONTH, row.zone_id)
        own = next(zone for zone in commune.zones if zone.zone_id == row.zone_id)
        assert row.offline_hours == pytest.approx(own.offline_hours), row.zone_id
        assert row.minutes == pytest.approx(own.minutes), row.zone_id
        assert (row.targeted, row.finished) == (own.targeted, own.finished), row.zone_id


def test_the_province_total(service: BroadcastService, ids: dict[str, int]) -> None:
    total = service.province_reports.report(ids["tinh"], YEAR, MONTH).total
    assert (total.zone_id, total.name, total.code) == ("tinh-test", "Tỉnh Thử", "99")
    assert (total.receivers, total.online, total.attention) == (4, 2, 3)
    # each broadcast once (p1 reached both communes); minutes are the communes' sum
    assert (total.broadcasts, total.cancelled) == (4, 1)
    assert total.by_priority == {"emergency": 1, "priority": 2, "normal": 1}
    assert total.minutes == pytest.approx(22.0)
    assert total.unknown_airtime == 1
    assert (total.targeted, total.finished) == (6, 5)


def test_province_bulletins_are_zero_until_the_forwarding_table(
    service: BroadcastService, ids: dict[str, int]
) -> None:
    """The columns' place (issue 13 item 3 fills `_bulletin_counts`): zeros, never missing."""
    report = service.province_reports.report(ids["tinh"], YEAR, MONTH)
    for row in [*report.communes, report.total]:
        assert row.bulletins == ProvinceBulletinCounts(played=0, waiting=0, declined=0)
    assert ProvinceBulletinCounts(1, 2, 3) + ProvinceBulletinCounts(1, 0, 1) == (
        ProvinceBulletinCounts(2, 2, 4)
    )


def test_a_province_account_sees_only_its_province(
    service: BroadcastService, ids: dict[str, int]
) -> None:
    report = service.province_reports.report(ids["admin-tinh"], YEAR, MONTH)
    assert [choice.id for choice in report.provinces] == ["tinh-test"]
    assert "xa-khac" not in {row.zone_id for row in report.communes}
    for name in ("tinh", "admin-tinh"):
        with pytest.raises(NotFound):
            service.province_reports.report(ids[name], YEAR, MONTH, "tinh-khac")
        with pytest.raises(NotFound):  # a commune is not a province
            service.province_reports.report(ids[name], YEAR, MONTH, "xa-test")


def test_installation_wide_accounts_choose_a_province(
    service: BroadcastService, ids: dict[str, int]
) -> None:
    report = service.province_reports.report(ids["admin"], YEAR, MONTH)
    assert [choice.id for choice in report.provinces] == ["tinh-khac", "tinh-test"]
    assert report.province_id == "tinh-khac"  # the first by name
    khac = _rows(service, ids["admin"])["xa-khac"]
    assert (khac.receivers, khac.broadcasts, khac.minutes) == (1, 1, 1.0)
    assert set(_rows(service, ids["admin"], province_id="tinh-test")) == {
        "xa-ba",
        "xa-hai",
        "xa-test",
    }
    with pytest.raises(NotFound):
        service.province_reports.report(ids["admin"], YEAR, MONTH, "nowhere")


# officer, leader, viewer: the single commune's staff, bound to it when it joined the province
@pytest.mark.parametrize("name", ["officer-xa", "viewer-xa", "head-a", "officer", "leader"])
def test_commune_and_village_accounts_are_refused(
    service: BroadcastService, ids: dict[str, int], name: str
) -> None:
    assert not service.province_reports.may_read(ids[name])
    with pytest.raises(PermissionDenied):
        service.province_reports.report(ids[name], YEAR, MONTH)
    with pytest.raises(PermissionDenied):
        service.province_reports.report_csv(ids[name], YEAR, MONTH)


def test_who_is_offered_the_report(service: BroadcastService, ids: dict[str, int]) -> None:
    for name in ("tinh", "admin-tinh", "admin"):
        assert service.province_reports.may_read(ids[name]), name
    for name in ("officer", "leader", "viewer"):  # bound to their commune when it moved
        assert not service.province_reports.may_read(ids[name]), name
    with service.db.session() as session:
        accounts.get_user(session, "tinh").active = False
    assert not service.province_reports.may_read(ids["tinh"])
    with pytest.raises(PermissionDenied):
        service.province_reports.report(ids["tinh"], YEAR, MONTH)


def test_without_a_province_the_root_communes(service: BroadcastService, users: Users) -> None:
    """A single-commune installation: no link is offered, the page lists its commune."""
    add_devices(service, {"loa-a-01": "thon-a"})
    assert not service.province_reports.may_read(users.admin)
    report = service.province_reports.report(users.admin, YEAR, MONTH)
    assert report.province_id is None
    assert report.provinces == []
    assert [(row.zone_id, row.receivers) for row in report.communes] == [("xa-test", 1)]
    assert report.total.name == "Tổng cộng"


def test_csv(service: BroadcastService, ids: dict[str, int]) -> None:
    data = service.province_reports.report_csv(ids["tinh"], YEAR, MONTH)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header = rows[0]
    assert header[:4] == ["Tháng", "Mã khu vực", "Mã hành chính", "Xã / phường"]
    assert header[-3:] == [
        "Bản tin tỉnh đã phát",
        "Bản tin tỉnh đang chờ",
        "Bản tin tỉnh bị từ chối",
    ]
    table = {row[1]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert list(table) == ["xa-ba", "xa-hai", "xa-test", "tinh-test"]
    xa = table["xa-test"]
    assert (xa["Số cụm loa"], xa["Trực tuyến"], xa["Cần chú ý"]) == ("3", "2", "2")
    assert (xa["Số phút phát"], xa["Tỉ lệ phát thành công (%)"]) == ("12.0", "75.0")
    assert table["xa-ba"]["Tỉ lệ phát thành công (%)"] == ""
    assert table["tinh-test"]["Xã / phường"] == "Tỉnh Thử"
    assert table["tinh-test"]["Số phút phát"] == "22.0"
    assert table["xa-hai"]["Bản tin tỉnh đã phát"] == "0"
    assert (xa["Số giờ mất kết nối"], table["tinh-test"]["Số giờ mất kết nối"]) == (
        "748.0",
        "772.0",
    )


# --- scale: the queries do not grow with the communes or their receivers ------------------


def _province_of(service: BroadcastService, key: str, communes: int) -> int:
    """A province `key` of `communes` communes, each with a village, two receivers and a
    broadcast both received (one finished); returns its province editor's id."""
    with service.db.session() as session:
        zones.create_zone(session, key, f"Tỉnh {key}", ZoneKind.PROVINCE)
        for number in range(communes):
            commune, village = f"{key}-xa-{number}", f"{key}-thon-{number}"
            zones.create_zone(session, commune, f"Xã {number}", ZoneKind.COMMUNE, key)
            zones.create_zone(session, village, "Thôn", ZoneKind.VILLAGE, commune)
        editor = accounts.create_user(session, f"{key}-editor", PASSWORD, Role.PROVINCE_EDITOR, key)
        editor_id = editor.id
    add_devices(
        service, {f"{key}-loa-{n}-{k}": f"{key}-thon-{n}" for n in range(communes) for k in (1, 2)}
    )
    with service.db.session() as session:
        for number in range(communes):
            broadcast = Broadcast(
                title="Tin",
                text="Tin",
                priority="normal",
                zone_ids=[f"{key}-xa-{number}"],
                source="announcement",
                status="finished",
                content="relay",
                duration_s=60.0 + number,
                created_at=datetime(2025, 10, 10),
            )
            session.add(broadcast)
            session.flush()
            loa = f"{key}-loa-{number}"
            session.add_all(
                [
                    Delivery(
                        broadcast_id=broadcast.id,
                        device_id=f"{loa}-1",
                        state="finished",
                        started_at=datetime(2025, 10, 10),
                    ),
                    Delivery(broadcast_id=broadcast.id, device_id=f"{loa}-2", state="failed"),
                ]
            )
    return editor_id


def test_queries_do_not_grow_with_the_province(service: BroadcastService) -> None:
    """Item 6 of issue 13: the same number of statements for 2 communes and for 20 (counted
    with an SQLAlchemy event listener on the engine)."""
    counts = {}
    for key, communes in (("small", 2), ("large", 20)):
        editor = _province_of(service, key, communes)
        with sql_statements(service.db.engine) as statements:
            report = service.province_reports.report(editor, YEAR, MONTH)
        with sql_statements(service.db.engine) as monthly:
            service.province_reports.report(editor, YEAR, MONTH, offline=True)
        assert len(report.communes) == communes
        assert report.total.receivers == 2 * communes
        assert (report.total.targeted, report.total.finished) == (2 * communes, communes)
        assert report.total.minutes == pytest.approx(sum(60 + n for n in range(communes)) / 60)
        counts[communes] = (len(statements), len(monthly))
    assert counts[2] == counts[20], counts
    assert counts[20][0] <= 10, counts
    assert counts[20][1] == counts[20][0] + 4, counts
