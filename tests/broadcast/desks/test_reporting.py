"""Reports on a hand-built month: October 2025 in Asia/Ho_Chi_Minh, which runs from
2025-09-30 17:00 to 2025-10-31 17:00 UTC. Every number of the log, the CSV exports and the
monthly summary is worked out here by hand."""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import imageio_ffmpeg
import pytest
from service_support import Province, Users, add_devices

import audio
import audio.store as audio_store
from broadcast.desks import reporting
from broadcast.desks.reporting import LogFilter, offline_seconds
from broadcast.errors import PermissionDenied, ValidationError
from broadcast.service import BroadcastService
from broadcast.store.models import (
    Broadcast,
    Bulletin,
    Delivery,
    Device,
    DevicePresence,
    Schedule,
    User,
    utcnow,
)

START = datetime(2025, 9, 30, 17, 0)  # 2025-10-01 00:00 local
END = datetime(2025, 10, 31, 17, 0)  # 2025-11-01 00:00 local
MONTH_S = (END - START).total_seconds()
COMMA_TITLE = 'Mất điện, "khẩn"\nthôn A'
FORMULA_TITLE = '=HYPERLINK("http://example.invalid","bấm")'


@dataclass
class Month:
    service: BroadcastService
    users: Users
    ids: dict[str, int]
    media_s: float  # the real MP3's length


def _silent_mp3(seconds: float) -> bytes:
    result = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=22050:cl=mono",
            "-t",
            str(seconds),
            "-b:a",
            "32k",
            "-f",
            "mp3",
            "-",
        ],
        check=True,
        capture_output=True,
    )
    return result.stdout


def _broadcast(
    session: object,
    key: str,
    *,
    at: datetime,
    priority: str,
    zones: list[str],
    deliveries: dict[str, str],
    devices: list[str] | None = None,
    source: str = "announcement",
    **fields: object,
) -> Broadcast:
    broadcast = Broadcast(
        title=fields.pop("title", key),
        text=key,
        priority=priority,
        zone_ids=zones,
        device_ids=devices or [],
        source=source,
        status=fields.pop("status", "finished"),
        created_at=at,
        **fields,
    )
    session.add(broadcast)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    for device_id, state in deliveries.items():
        played = state == "finished"
        session.add(  # type: ignore[attr-defined]
            Delivery(
                broadcast_id=broadcast.id,
                device_id=device_id,
                state=state,
                started_at=at + timedelta(seconds=5) if played else None,
                finished_at=at + timedelta(seconds=60) if state in ("finished", "failed") else None,
            )
        )
    return broadcast


@pytest.fixture
def month(service: BroadcastService, users: Users) -> Iterator[Month]:
    add_devices(service, {"loa-a-01": "thon-a", "loa-a-02": "thon-a", "loa-b-01": "thon-b"})
    sha = service.media.put_bytes(_silent_mp3(6.0))
    media_s = audio.probe_duration_s(service.media.path(sha))
    ids: dict[str, int] = {}
    with service.db.session() as session:
        for device in session.query(Device):
            device.created_at = datetime(2025, 1, 1)
        session.get(Device, "loa-a-01").online = True
        session.get(Device, "loa-a-02").online = True
        session.get(Device, "loa-b-01").online = False
        session.add_all(
            [
                DevicePresence(device_id="loa-a-01", at=datetime(2025, 9, 30, 15), online=False),
                DevicePresence(device_id="loa-a-01", at=datetime(2025, 9, 30, 20), online=True),
                DevicePresence(device_id="loa-a-01", at=datetime(2025, 10, 31, 16), online=False),
            ]
        )
        bulletin = Bulletin(title="Bản tin sáng", text="Bản tin sáng")
        session.add(bulletin)
        session.flush()
        schedule = Schedule(
            bulletin_id=bulletin.id,
            kind="daily",
            time_of_day="06:00",
            zone_ids=["xa-test"],
            priority="normal",
            airtime_s=120.0,
        )
        session.add(schedule)
        session.flush()
        made = {
            "b1": _broadcast(
                session,
                "b1",
                title=COMMA_TITLE,
                at=datetime(2025, 10, 5, 2),
                priority="emergency",
                zones=["thon-a"],
                deliveries={"loa-a-01": "finished", "loa-a-02": "failed"},
                media_sha256=sha,
                repeat=3,
                status="partial",
                created_by_id=users.officer,
            ),
            "b2": _broadcast(
                session,
                "b2",
                at=datetime(2025, 10, 9),
                occurrence_at=datetime(2025, 10, 10, 23),
                priority="normal",
                zones=["xa-test"],
                source="schedule",
                schedule_id=schedule.id,
                deliveries={"loa-a-01": "finished", "loa-a-02": "finished", "loa-b-01": "failed"},
                status="partial",
            ),
            "b3": _broadcast(
                session,
                "b3",
                title=FORMULA_TITLE,
                at=datetime(2025, 10, 20, 1),
                priority="priority",
                zones=["thon-b"],
                source="bulletin",
                content="relay",
                relay_url="https://radio.example.invalid/vov1",
                duration_s=1800.0,
                deliveries={"loa-b-01": "finished"},
            ),
            "b4": _broadcast(
                session,
                "b4",
                at=datetime(2025, 10, 21, 1),
                priority="emergency",
                zones=["thon-b"],
                deliveries={"loa-b-01": "stopped"},
                status="cancelled",
            ),
            "b5": _broadcast(  # 23:59 local on 30 September: not October's
                session,
                "b5",
                at=datetime(2025, 9, 30, 16, 59),
                priority="normal",
                zones=["xa-test"],
                deliveries={"loa-a-01": "finished", "loa-b-01": "finished"},
            ),
            "b6": _broadcast(  # 00:00 local on 1 October, a named receiver, length unknown
                session,
                "b6",
                at=START,
                priority="normal",
                zones=[],
                devices=["loa-b-01"],
                deliveries={"loa-b-01": "finished"},
            ),
            "b7": _broadcast(  # a planned run not yet due: not in the log
                session,
                "b7",
                at=utcnow(),
                occurrence_at=utcnow() + timedelta(days=1),
                priority="normal",
                zones=["xa-test"],
                source="schedule",
                schedule_id=schedule.id,
                deliveries={"loa-a-01": "queued"},
                status="scheduled",
            ),
            "b8": _broadcast(  # the last second of October, still open
                session,
                "b8",
                at=END - timedelta(seconds=1),
                priority="emergency",
                zones=["thon-a"],
                source="correction",
                deliveries={"loa-a-01": "queued"},
                status="dispatched",
            ),
        }
        session.flush()
        ids = {key: broadcast.id for key, broadcast in made.items()}
    yield Month(service, users, ids, media_s)


def _titles(month: Month, rows: list[reporting.LogRow]) -> list[str]:
    names = {value: key for key, value in month.ids.items()}
    return [names[row.id] for row in rows]


OCTOBER = LogFilter.from_args({"from": "2025-10-01", "to": "2025-10-31"})


# --- the log ------------------------------------------------------------------------------


def test_log_is_newest_first_without_runs_not_yet_due(month: Month) -> None:
    page = month.service.reports.broadcast_log(month.users.viewer, LogFilter())
    assert _titles(month, page.rows) == ["b8", "b4", "b3", "b2", "b1", "b6", "b5"]
    assert page.total == 7 and page.pages == 1


def test_local_date_range(month: Month) -> None:
    reports = month.service.reports
    october = reports.broadcast_log(month.users.officer, OCTOBER)
    assert _titles(month, october.rows) == ["b8", "b4", "b3", "b2", "b1", "b6"]
    first = LogFilter.from_args({"from": "2025-10-01", "to": "2025-10-01"})
    assert _titles(month, reports.broadcast_log(month.users.officer, first).rows) == ["b6"]
    september = LogFilter.from_args({"to": "2025-09-30"})
    assert _titles(month, reports.broadcast_log(month.users.officer, september).rows) == ["b5"]


def test_zone_filter_includes_the_communes_and_named_receivers(month: Month) -> None:
    reports = month.service.reports
    thon_b = reports.broadcast_log(month.users.leader, LogFilter(zone_id="thon-b"))
    assert _titles(month, thon_b.rows) == ["b4", "b3", "b2", "b6", "b5"]
    b2 = next(row for row in thon_b.rows if row.id == month.ids["b2"])
    assert (b2.counts.targeted, b2.counts.finished, b2.counts.failed) == (1, 0, 1)
    thon_a = reports.broadcast_log(month.users.leader, LogFilter(zone_id="thon-a"))
    assert _titles(month, thon_a.rows) == ["b8", "b2", "b1", "b5"]
    b2 = next(row for row in thon_a.rows if row.id == month.ids["b2"])
    assert (b2.counts.targeted, b2.counts.finished) == (2, 2)
    commune = reports.broadcast_log(month.users.leader, LogFilter(zone_id="xa-test"))
    assert commune.total == 7


def test_kind_content_and_priority_filters(month: Month) -> None:
    reports = month.service.reports

    def titles(**args: str) -> list[str]:
        wanted = LogFilter.from_args(args)
        return _titles(month, reports.broadcast_log(month.users.admin, wanted).rows)

    assert titles(source="schedule") == ["b2"]
    assert titles(source="correction") == ["b8"]
    assert titles(source="bulletin") == ["b3"]
    assert titles(content="relay") == ["b3"]
    assert titles(priority="emergency") == ["b8", "b4", "b1"]
    assert titles(priority="normal", zone="thon-b", **{"from": "2025-10-01"}) == ["b2", "b6"]


def test_pagination(month: Month) -> None:
    reports = month.service.reports
    first = reports.broadcast_log(month.users.admin, LogFilter(), page=1, per_page=3)
    last = reports.broadcast_log(month.users.admin, LogFilter(), page=3, per_page=3)
    beyond = reports.broadcast_log(month.users.admin, LogFilter(), page=99, per_page=3)
    assert (first.pages, first.has_previous, first.has_next) == (3, False, True)
    assert _titles(month, first.rows) == ["b8", "b4", "b3"]
    assert _titles(month, last.rows) == ["b5"] and not last.has_next
    assert beyond.page == 3


def test_bad_filters_name_their_field() -> None:
    for args, field in (
        ({"from": "31/10/2025"}, "from"),
        ({"to": "2025-13-01"}, "to"),
        ({"from": "2025-10-02", "to": "2025-10-01"}, "to"),
        ({"source": "radio"}, "source"),
        ({"content": "video"}, "content"),
        ({"priority": "urgent"}, "priority"),
    ):
        with pytest.raises(ValidationError) as info:
            LogFilter.from_args(args)
        assert info.value.field == field
    with pytest.raises(ValidationError) as info:
        reporting.parse_month("2025/10")
    assert info.value.field == "month"


def test_unknown_zone_is_a_validation_error(month: Month) -> None:
    with pytest.raises(ValidationError) as info:
        month.service.reports.broadcast_log(month.users.admin, LogFilter(zone_id="thon-z"))
    assert info.value.field == "zone"


# --- who sees what ------------------------------------------------------------------------


def test_village_head_sees_only_own_village(month: Month) -> None:
    reports, head = month.service.reports, month.users.head_1
    assert [zone.id for zone in reports.zone_choices(head)] == ["thon-a"]
    page = reports.broadcast_log(head, LogFilter())
    assert page.filter.zone_id == "thon-a"
    assert _titles(month, page.rows) == ["b8", "b2", "b1", "b5"]
    for zone_id in ("thon-b", "xa-test"):
        with pytest.raises(PermissionDenied):
            reports.broadcast_log(head, LogFilter(zone_id=zone_id))
        with pytest.raises(PermissionDenied):
            reports.log_csv(head, LogFilter(zone_id=zone_id))
        with pytest.raises(PermissionDenied):
            reports.deliveries_csv(head, LogFilter(zone_id=zone_id))
        with pytest.raises(PermissionDenied):
            reports.monthly_summary(head, 2025, 10, zone_id)
    summary = reports.monthly_summary(head, 2025, 10)
    assert [zone.zone_id for zone in summary.zones] == ["thon-a"]
    assert [device.device_id for device in summary.devices] == ["loa-a-01", "loa-a-02"]
    rows = _csv_rows(reports.deliveries_csv(head, LogFilter()))
    assert {row[4] for row in rows[1:]} == {"loa-a-01", "loa-a-02"}


def test_every_other_role_sees_every_zone(month: Month) -> None:
    users = month.users
    for user_id in (users.admin, users.officer, users.leader, users.viewer):
        choices = month.service.reports.zone_choices(user_id)
        assert [zone.id for zone in choices] == ["xa-test", "thon-a", "thon-b"]


def test_disabled_user_gets_nothing(month: Month) -> None:
    with month.service.db.session() as session:
        session.get(User, month.users.viewer).active = False
    with pytest.raises(PermissionDenied):
        month.service.reports.broadcast_log(month.users.viewer, LogFilter())


# --- CSV ----------------------------------------------------------------------------------


def _csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), data[:10]
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_log_csv(month: Month) -> None:
    data = month.service.reports.log_csv(month.users.officer, OCTOBER)
    assert b"\r\n" in data
    rows = _csv_rows(data)
    assert rows[0][:3] == ["Mã lượt phát", "Thời gian (giờ Việt Nam)", "Tiêu đề"]
    assert [int(row[0]) for row in rows[1:]] == [
        month.ids[key] for key in ("b8", "b4", "b3", "b2", "b1", "b6")
    ]
    by_id = {int(row[0]): row for row in rows[1:]}
    b1 = by_id[month.ids["b1"]]
    assert b1[2] == COMMA_TITLE  # comma, quotes and newline survive the round trip
    assert b1[1] == "2025-10-05 09:00:00"  # local time
    assert b1[3:7] == ["Thông báo", "Âm thanh", "Khẩn cấp", "Phát một phần"]
    assert b1[7] == "Thôn A" and b1[9] == "officer"
    assert b1[10:] == ["2", "1", "1", "0", "0"]
    b3 = by_id[month.ids["b3"]]
    assert b3[2] == "'" + FORMULA_TITLE  # never run as a formula
    assert b3[4] == "Tiếp sóng"
    assert by_id[month.ids["b6"]][1] == "2025-10-01 00:00:00"
    assert by_id[month.ids["b6"]][8] == "loa-b-01"
    assert by_id[month.ids["b4"]][10:] == ["1", "0", "0", "1", "0"]


def test_formula_cells_are_neutralised() -> None:
    for text in ("=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", " =1"):
        assert reporting.csv_cell(text) == "'" + text
    assert reporting.csv_cell("Thôn A") == "Thôn A"
    assert reporting.csv_cell(-3) == -3  # numbers stay numbers


def test_deliveries_csv(month: Month) -> None:
    reports = month.service.reports
    rows = _csv_rows(reports.deliveries_csv(month.users.admin, OCTOBER))
    assert rows[0][4] == "Cụm loa"
    pairs = [(int(row[0]), row[4]) for row in rows[1:]]
    expected = [
        ("b8", "loa-a-01"),
        ("b4", "loa-b-01"),
        ("b3", "loa-b-01"),
        ("b2", "loa-a-01"),
        ("b2", "loa-a-02"),
        ("b2", "loa-b-01"),
        ("b1", "loa-a-01"),
        ("b1", "loa-a-02"),
        ("b6", "loa-b-01"),
    ]
    assert pairs == [(month.ids[key], device) for key, device in expected]
    b1 = next(row for row in rows[1:] if row[0] == str(month.ids["b1"]) and row[4] == "loa-a-01")
    assert b1[2] == COMMA_TITLE and b1[6] == "Thôn A" and b1[7] == "Đã phát xong"
    assert b1[11] == "2025-10-05 09:00:05"
    only_b = _csv_rows(reports.deliveries_csv(month.users.admin, LogFilter(zone_id="thon-b")))
    assert {row[4] for row in only_b[1:]} == {"loa-b-01"}


# --- the monthly summary ------------------------------------------------------------------


def test_monthly_summary(month: Month) -> None:
    summary = month.service.reports.monthly_summary(month.users.leader, 2025, 10)
    assert (summary.start, summary.end, summary.measured_until) == (START, END, END)
    zones = {zone.zone_id: zone for zone in summary.zones}
    assert list(zones) == ["xa-test", "thon-a", "thon-b"]

    thon_a = zones["thon-a"]
    assert thon_a.by_priority == {"emergency": 2, "priority": 0, "normal": 1}
    assert (thon_a.total, thon_a.cancelled) == (3, 0)
    assert (thon_a.finished, thon_a.targeted) == (3, 5)
    assert thon_a.delivery_rate == pytest.approx(0.6)
    assert thon_a.airtime_s == pytest.approx(month.media_s * 3 + 120)
    assert thon_a.unknown_airtime == 0
    assert thon_a.offline_s == pytest.approx(4 * 3600)
    assert thon_a.devices == 2

    thon_b = zones["thon-b"]
    assert thon_b.by_priority == {"emergency": 1, "priority": 1, "normal": 2}
    assert (thon_b.total, thon_b.cancelled) == (4, 1)
    assert (thon_b.finished, thon_b.targeted) == (2, 3)  # the stopped delivery is left out
    assert thon_b.airtime_s == pytest.approx(1800)
    assert thon_b.unknown_airtime == 1
    assert thon_b.offline_s == pytest.approx(MONTH_S)

    commune = zones["xa-test"]
    assert commune.by_priority == {"emergency": 3, "priority": 1, "normal": 2}
    assert (commune.total, commune.cancelled) == (6, 1)
    assert (commune.finished, commune.targeted) == (5, 8)
    assert commune.airtime_s == pytest.approx(month.media_s * 3 + 120 + 1800)
    assert commune.unknown_airtime == 1
    assert commune.offline_s == pytest.approx(4 * 3600 + MONTH_S)

    devices = {device.device_id: device for device in summary.devices}
    assert devices["loa-a-01"].offline_s == pytest.approx(4 * 3600)
    assert devices["loa-a-02"].offline_s == 0
    assert devices["loa-b-01"].offline_s == pytest.approx(MONTH_S)
    assert devices["loa-b-01"].online_share == pytest.approx(0.0)


def test_monthly_csv(month: Month) -> None:
    rows = _csv_rows(month.service.reports.monthly_csv(month.users.viewer, 2025, 10))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["Tháng", "Mã khu vực", "Khu vực"]
    thon_b = dict(zip(header, next(row for row in body if row[1] == "thon-b"), strict=True))
    assert thon_b["Tháng"] == "10/2025"
    assert thon_b["Số lượt khẩn cấp"] == "1"
    assert thon_b["Tổng số lượt phát"] == "4"
    assert thon_b["Số phút phát"] == "30.0"
    assert thon_b["Tỉ lệ phát thành công (%)"] == "66.7"
    assert thon_b["Số giờ mất kết nối"] == "744.0"


def test_media_length_is_probed_once_per_sha256(
    month: Month, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = audio_store.probe_duration_s

    def counting(source: Path) -> float:
        calls.append(source)
        return real(source)

    monkeypatch.setattr(audio_store, "probe_duration_s", counting)
    for _ in range(3):
        month.service.reports.monthly_summary(month.users.admin, 2025, 10)
    assert len(calls) == 1


def test_current_month_counts_up_to_now(month: Month) -> None:
    now = utcnow()
    local = now + timedelta(hours=7)
    summary = month.service.reports.monthly_summary(month.users.admin, local.year, local.month)
    assert summary.start <= summary.measured_until <= utcnow()
    b01 = next(d for d in summary.devices if d.device_id == "loa-b-01")
    assert b01.offline_s == pytest.approx((summary.measured_until - summary.start).total_seconds())


# --- offline time, the arithmetic -----------------------------------------------------------


def test_offline_seconds() -> None:
    t0, t1 = datetime(2025, 10, 1), datetime(2025, 10, 2)
    hour = timedelta(hours=1)
    assert offline_seconds([], online_now=True, start=t0, end=t1) == 0
    assert offline_seconds([], online_now=False, start=t0, end=t1) == 86400
    # only a later transition: before it the device was in the opposite state
    assert offline_seconds([(t1 + hour, True)], online_now=True, start=t0, end=t1) == 86400
    # only an earlier one: its state holds all along
    assert offline_seconds([(t0 - hour, True)], online_now=False, start=t0, end=t1) == 0
    # clipped at both ends
    transitions = [(t0 - hour, False), (t0 + 2 * hour, True), (t1 - hour, False)]
    assert offline_seconds(transitions, online_now=False, start=t0, end=t1) == 3 * 3600
    assert offline_seconds(transitions, online_now=False, start=t1, end=t0) == 0


def test_a_province_picks_a_commune_then_its_villages(
    service: BroadcastService, province: Province
) -> None:
    """Not a province's five hundred villages at once: its communes, and a commune's villages
    once that commune is chosen (or one of its villages)."""
    reports, editor = service.reports, province.province_editor
    listed = [(zone.id, zone.depth) for zone in reports.zone_choices(editor)]
    assert listed == [(province.province, 0), (province.commune_a, 1), (province.commune_b, 1)]
    for chosen in (province.commune_a, province.village_a2):
        assert [zone.id for zone in reports.zone_choices(editor, chosen)] == [
            province.province,
            province.commune_a,
            province.village_a,
            province.village_a2,
            province.commune_b,
        ]
    # a zone out of reach opens nothing (the filter refuses it)
    assert len(reports.zone_choices(province.officer_a, province.commune_b)) == 3
