"""Reports (báo cáo): the broadcast log filtered and paginated, its CSV exports, and the monthly
summary per zone that the commune sends up to the province.

Who sees what is decided here: every account sees the zones of its scope (its zone and below;
an installation-wide account every zone), with no zone chosen its own zone; asking for another
zone is PermissionDenied. A commune's report counts what its province sent there too.

A broadcast *reached* a zone when it targeted the zone itself, a zone above it (its commune), a
zone below it, or a receiver in it (named, or with a delivery). When a zone is chosen, delivery
counts are those of that zone's receivers only. A broadcast's time is its run time (planned
runs) or its creation time (sent at once); planned runs not yet due are not in the log.

Monthly figures (local calendar month, Asia/Ho_Chi_Minh):

- broadcasts by priority: every log row that reached the zone in the month (cancelled ones too,
  also counted apart);
- minutes broadcast: the airtime of each broadcast that at least one of the zone's receivers
  started or finished: a relay's `duration_s`, else the media's length (`audio.probe_duration_s`,
  cached per sha256) × repeat, else the schedule's `airtime_s`; a broadcast whose length cannot be
  known is counted in `unknown_airtime`;
- delivery rate: finished deliveries / targeted deliveries of the zone's receivers; deliveries a
  person stopped (dừng) are left out of both;
- offline time: from `device_presence` (each online/offline transition), clipped to the month, to
  now and to the device's registration; a device that never reported counts by its current state.
"""

from __future__ import annotations

import calendar
import csv
import io
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

import audio
from broadcast import clock, const
from broadcast.const import BroadcastStatus, DeliveryState
from broadcast.desks import replay
from broadcast.errors import N_, PermissionDenied, ValidationError
from broadcast.people import accounts, zones
from broadcast.people.permissions import Action
from broadcast.sending.broadcasts import aimed_at_any, delivered_to_any
from broadcast.store.db import Database
from broadcast.store.json_lists import json_list_has_any
from broadcast.store.membership import in_subquery
from broadcast.store.models import (
    Broadcast,
    Delivery,
    Device,
    DevicePresence,
    Schedule,
    User,
    Zone,
    utcnow,
)
from broadcast.store.paging import Page, clamp_page
from wire.protocol import ContentType, Priority

_LOGGER = logging.getLogger(__name__)

PER_PAGE = 50
MAX_PER_PAGE = 200

# the codes' words (`broadcast.const`, one table per enum); the filters' choices are their keys
SOURCE_LABELS = const.SOURCE_LABELS
CONTENT_LABELS = const.CONTENT_TYPE_LABELS
PRIORITY_LABELS = const.PRIORITY_LABELS
PRIORITY_ORDER = (Priority.EMERGENCY.value, Priority.PRIORITY.value, Priority.NORMAL.value)
# a spreadsheet cell starting with one of these is read as a formula (CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# --- filters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogFilter:
    """What the log is narrowed to; dates are local and inclusive."""

    zone_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    source: str | None = None
    content: str | None = None
    priority: str | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> LogFilter:
        """From a query string (`zone`, `from`, `to`, `source`, `content`, `priority`); an
        empty value means any."""
        date_from = _parse_date(args.get("from", ""), "from", N_("Từ ngày"))
        date_to = _parse_date(args.get("to", ""), "to", N_("Đến ngày"))
        if date_from and date_to and date_from > date_to:
            raise ValidationError(
                "to", N_("“Đến ngày” phải sau hoặc bằng “Từ ngày”"), "ends_before_start"
            )
        return cls(
            zone_id=(args.get("zone", "") or "").strip() or None,
            date_from=date_from,
            date_to=date_to,
            source=_choice(args.get("source", ""), "source", N_("Loại"), SOURCE_LABELS),
            content=_choice(args.get("content", ""), "content", N_("Nội dung"), CONTENT_LABELS),
            priority=_choice(
                args.get("priority", ""), "priority", N_("Mức ưu tiên"), PRIORITY_LABELS
            ),
        )

    def query_args(self) -> dict[str, str]:
        """The same filter as query-string arguments (links to other pages and exports)."""
        values = {
            "zone": self.zone_id or "",
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "source": self.source or "",
            "content": self.content or "",
            "priority": self.priority or "",
        }
        return {key: value for key, value in values.items() if value}


def _parse_date(text: str, field_name: str, label: str) -> date | None:
    return clock.parse_date(
        text,
        field_name,
        N_("“%(label)s” phải là một ngày dạng năm-tháng-ngày, ví dụ 2026-11-26"),
        label=label,
    )


def _choice(text: str, field_name: str, label: str, choices: Mapping[str, str]) -> str | None:
    text = (text or "").strip()
    if not text:
        return None
    if text not in choices:
        raise ValidationError(
            field_name,
            N_("“%(label)s” không có lựa chọn “%(value)s”"),
            "unknown_choice",
            label=label,
            value=text[:40],
        )
    return text


def parse_month(text: str, today: date | None = None) -> tuple[int, int]:
    """'2026-11' → (2026, 11); empty → the current local month."""
    text = (text or "").strip()
    if not text:
        local = today or clock.to_local(utcnow()).date()  # type: ignore[union-attr]
        return local.year, local.month
    try:
        year_text, month_text = text.split("-")
        year, month = int(year_text), int(month_text)
    except ValueError as exc:
        raise ValidationError(
            "month", N_("“Tháng” phải có dạng năm-tháng, ví dụ 2026-11"), "not_a_month"
        ) from exc
    if not 1 <= month <= 12:
        raise ValidationError("month", N_("“Tháng” không hợp lệ"), "not_a_month")
    clock.check_year(year, "month")
    return year, month


MAX_PAGE = 1_000_000  # far beyond any log; a larger offset would overflow the database's integer


def parse_page(text: str) -> int:
    try:
        page = int((text or "1").strip())
    except ValueError as exc:
        raise ValidationError("page", N_("“Trang” phải là số nguyên"), "not_integer") from exc
    if page > MAX_PAGE:
        raise ValidationError(
            "page", N_("“Trang” phải từ 1 đến %(max)s"), "out_of_range", max=MAX_PAGE
        )
    return max(1, page)


def local_day_start(day: date) -> datetime:
    """Local midnight of `day`, as stored (naive UTC)."""
    return clock.parse_local(datetime(day.year, day.month, day.day).isoformat(), "date")


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """The local calendar month as [start, end) in naive UTC."""
    last_day = calendar.monthrange(year, month)[1]
    # the last day's midnight plus a day (Asia/Ho_Chi_Minh keeps no summer time), so December
    # of the last year allowed does not need the next year's midnight to pass the year bound
    end = local_day_start(date(year, month, last_day)) + timedelta(days=1)
    return local_day_start(date(year, month, 1)), end


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryCounts:
    targeted: int = 0
    finished: int = 0
    failed: int = 0
    stopped: int = 0

    @property
    def waiting(self) -> int:
        return self.targeted - self.finished - self.failed - self.stopped


@dataclass(frozen=True)
class LogRow:
    id: int
    at: datetime  # UTC, naive
    title: str
    source: str
    content: str
    priority: str
    status: str
    zone_ids: list[str]
    device_ids: list[str]
    created_by: str
    counts: DeliveryCounts


@dataclass(frozen=True)
class LogPage(Page[LogRow]):
    filter: LogFilter
    zone_names: dict[str, str] = field(default_factory=dict)  # every zone the rows name


@dataclass(frozen=True)
class ZoneChoice:
    id: str
    name: str
    kind: str
    depth: int = 0  # below the first zone listed: a picker indents a province's villages


@dataclass(frozen=True)
class ZoneMonth:
    zone_id: str
    zone_name: str
    kind: str
    by_priority: dict[str, int]
    total: int
    cancelled: int
    airtime_s: float
    unknown_airtime: int
    targeted: int
    finished: int
    devices: int
    offline_s: float

    @property
    def delivery_rate(self) -> float | None:
        return self.finished / self.targeted if self.targeted else None

    @property
    def minutes(self) -> float:
        return self.airtime_s / 60

    @property
    def offline_hours(self) -> float:
        return self.offline_s / 3600


@dataclass(frozen=True)
class DeviceMonth:
    device_id: str
    name: str
    zone_id: str
    zone_name: str
    offline_s: float
    measured_s: float
    online_now: bool

    @property
    def offline_hours(self) -> float:
        return self.offline_s / 3600

    @property
    def online_share(self) -> float | None:
        return 1 - self.offline_s / self.measured_s if self.measured_s > 0 else None


@dataclass(frozen=True)
class MonthlySummary:
    year: int
    month: int
    start: datetime  # UTC, naive
    end: datetime
    measured_until: datetime  # the end, or now for the current month
    zones: list[ZoneMonth]
    devices: list[DeviceMonth]
    generated_at: datetime = field(default_factory=utcnow)
    # listeners' feedback (góp ý) on each commune's replay page, received in the month
    feedback: dict[str, replay.FeedbackCounts] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.month:02d}/{self.year}"


# --- the reports ---------------------------------------------------------------------------


class Reports:
    """The report pages' and exports' one entry point (`BroadcastService.reports`)."""

    def __init__(self, db: Database, media: audio.MediaStore) -> None:
        self._db = db
        self._media = media

    # zones the user may choose

    def zone_choices(self, user_id: int, chosen: str | None = None) -> list[ZoneChoice]:
        """The picker, in tree order: the top of the user's scope, the zones right below it,
        and the zones below each zone on the way to `chosen`. A commune's account picks among
        its commune and villages; a province's among its communes, and a commune's villages
        once that commune is chosen (not its hundreds of villages at once)."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.READ_REPORTS)
            tree = zones.ZoneTree.load(session)  # one query, where walking the zones took one each
            top = tree.top_of(user)
            opened = {zone.id for zone in top}
            if chosen and chosen in tree.subtree_ids(opened):
                opened |= {zone.id for zone in tree.ancestors_and_self(chosen)}
            return [ZoneChoice(z.id, z.name, z.kind, depth) for z, depth in tree.walk(top, opened)]

    # the log

    def broadcast_log(
        self, user_id: int, wanted: LogFilter, page: int = 1, per_page: int = PER_PAGE
    ) -> LogPage:
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.READ_REPORTS)
            wanted = _authorized_filter(session, user, wanted)
            condition = _log_condition(session, wanted)
            total = session.scalar(select(func.count(Broadcast.id)).where(condition)) or 0
            page = clamp_page(page, total, per_page)
            broadcasts = list(
                session.scalars(
                    select(Broadcast)
                    .options(selectinload(Broadcast.created_by))
                    .where(condition)
                    .order_by(_when().desc(), Broadcast.id.desc())
                    .offset((page - 1) * per_page)
                    .limit(per_page)
                )
            )
            zone = None if wanted.zone_id is None else session.get(Zone, wanted.zone_id)
            counts = _delivery_counts(session, [b.id for b in broadcasts], zone)
            rows = [_log_row(b, counts.get(b.id, DeliveryCounts())) for b in broadcasts]
            named = {zone_id for row in rows for zone_id in row.zone_ids}
            names = {  # a commune-wide row shows the commune's name to a village head too
                zone.id: zone.name
                for zone in session.scalars(select(Zone).where(Zone.id.in_(named)))
            }
            return LogPage(rows, page, per_page, total, wanted, names)

    def log_csv(self, user_id: int, wanted: LogFilter) -> bytes:
        """One row per broadcast of the filter, with its delivery counts."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.READ_REPORTS)
            wanted = _authorized_filter(session, user, wanted)
            broadcasts = _all_broadcasts(session, wanted)
            devices = _zone_device_ids(session, wanted.zone_id)
            wanted_devices = None if devices is None else set(devices)
            counts = {
                b.id: _count(
                    d.state
                    for d in b.deliveries
                    if wanted_devices is None or d.device_id in wanted_devices
                )
                for b in broadcasts
            }
            names = _zone_names(session)
            header = [
                "Mã lượt phát",
                "Thời gian (giờ Việt Nam)",
                "Tiêu đề",
                "Loại",
                "Nội dung",
                "Mức ưu tiên",
                "Trạng thái",
                "Khu vực nhận",
                "Cụm loa chọn riêng",
                "Người gửi",
                "Số cụm loa nhận",
                "Đã phát xong",
                "Lỗi",
                "Đã dừng",
                "Chưa xong",
            ]
            rows = []
            for broadcast in broadcasts:
                row = _log_row(broadcast, counts.get(broadcast.id, DeliveryCounts()))
                rows.append(
                    [
                        row.id,
                        clock.format_local(row.at, _TIME_FORMAT),
                        row.title,
                        SOURCE_LABELS.get(row.source, row.source),
                        CONTENT_LABELS.get(row.content, row.content),
                        PRIORITY_LABELS.get(row.priority, row.priority),
                        const.BROADCAST_STATUS_LABELS.get(row.status, row.status),
                        ", ".join(names.get(z, z) for z in row.zone_ids),
                        ", ".join(row.device_ids),
                        row.created_by,
                        row.counts.targeted,
                        row.counts.finished,
                        row.counts.failed,
                        row.counts.stopped,
                        row.counts.waiting,
                    ]
                )
        _LOGGER.info("broadcast log exported: %d rows (%s)", len(rows), wanted.query_args())
        return to_csv(header, rows)

    def deliveries_csv(self, user_id: int, wanted: LogFilter) -> bytes:
        """One row per delivery (receiver × broadcast) of the filter."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.READ_REPORTS)
            wanted = _authorized_filter(session, user, wanted)
            broadcasts = _all_broadcasts(session, wanted)
            devices = _zone_device_ids(session, wanted.zone_id)
            device_rows = {d.id: d for d in session.scalars(select(Device))}
            names = _zone_names(session)
            header = [
                "Mã lượt phát",
                "Thời gian (giờ Việt Nam)",
                "Tiêu đề",
                "Mức ưu tiên",
                "Cụm loa",
                "Tên cụm loa",
                "Khu vực",
                "Trạng thái",
                "Chi tiết",
                "Nhận lệnh lúc",
                "Tải âm thanh xong lúc",
                "Bắt đầu phát lúc",
                "Kết thúc lúc",
            ]
            rows: list[list[Any]] = []
            wanted_devices = None if devices is None else set(devices)
            for broadcast in broadcasts:  # newest first; deliveries by receiver id
                for delivery in broadcast.deliveries:
                    if wanted_devices is not None and delivery.device_id not in wanted_devices:
                        continue
                    device = device_rows.get(delivery.device_id)
                    zone_id = device.zone_id if device is not None else ""
                    rows.append(
                        [
                            broadcast.id,
                            clock.format_local(_time_of(broadcast), _TIME_FORMAT),
                            broadcast.title,
                            PRIORITY_LABELS.get(broadcast.priority, broadcast.priority),
                            delivery.device_id,
                            device.name if device is not None else "",
                            names.get(zone_id, zone_id),
                            const.DELIVERY_STATE_LABELS.get(delivery.state, delivery.state),
                            delivery.detail,
                            clock.format_local(delivery.received_at, _TIME_FORMAT),
                            clock.format_local(delivery.fetched_at, _TIME_FORMAT),
                            clock.format_local(delivery.started_at, _TIME_FORMAT),
                            clock.format_local(delivery.finished_at, _TIME_FORMAT),
                        ]
                    )
        _LOGGER.info("deliveries exported: %d rows (%s)", len(rows), wanted.query_args())
        return to_csv(header, rows)

    # the monthly summary

    def monthly_summary(
        self, user_id: int, year: int, month: int, zone_id: str | None = None
    ) -> MonthlySummary:
        """Every zone of the scope (the chosen zone's subtree, else the user's), in tree order.

        A fixed number of queries at any size (the zones, the month's broadcasts, their
        deliveries counted per village and state, the schedules' airtimes, the receivers and
        their online/offline changes); which broadcast reached which zone, and each zone's
        share of the counts, is worked out from those in memory."""
        start, end = month_bounds(year, month)
        now = utcnow()
        measured_until = max(start, min(end, now))
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.READ_REPORTS)
            top = _authorized_zone(session, user, zone_id).id if zone_id else user.zone_id
            tree = zones.ZoneTree.load(session)
            tops = [tree.by_id[top]] if top is not None and top in tree.by_id else []
            if top is None:
                tops = tree.children(None)
            scope = [zone for zone, _depth in tree.walk(tops)]
            in_scope = {zone.id for zone in scope}
            month_filter = LogFilter(
                date_from=clock.to_local(start).date(),  # type: ignore[union-attr]
                date_to=clock.to_local(end - timedelta(microseconds=1)).date(),  # type: ignore[union-attr]
                zone_id=top,
            )
            device_months = _device_months(session, tree, top, start, measured_until)
            communes = [zone.id for zone in scope if zone.kind == const.ZoneKind.COMMUNE]
            feedback = replay.feedback_counts(session, communes, start, end)
            found = _month_broadcasts(session, month_filter, top)
        reach = _MonthReach(tree, in_scope, {d.device_id: d.zone_id for d in device_months})
        for row in found.rows:
            reach.add_broadcast(row)
        for broadcast_id, zone_of, state, count, started in found.deliveries:
            reach.add_deliveries(broadcast_id, zone_of, state, count, started)
        devices_in: dict[str, list[DeviceMonth]] = {}
        for device in device_months:
            for zone in tree.ancestors_and_self(device.zone_id):
                devices_in.setdefault(zone.id, []).append(device)
        airtimes: dict[int, float | None] = {}

        def airtime(row: _MonthRow) -> float | None:
            if row.id not in airtimes:
                airtimes[row.id] = self._airtime_of(row, found.schedule_airtimes)
            return airtimes[row.id]

        zone_months = [
            reach.zone_month(zone, found.rows, airtime, devices_in.get(zone.id, []))
            for zone in scope
        ]
        return MonthlySummary(
            year, month, start, end, measured_until, zone_months, device_months, feedback=feedback
        )

    def monthly_csv(self, user_id: int, year: int, month: int, zone_id: str | None = None) -> bytes:
        summary = self.monthly_summary(user_id, year, month, zone_id)
        header = [
            "Tháng",
            "Mã khu vực",
            "Khu vực",
            *(f"Số lượt {PRIORITY_LABELS[p].lower()}" for p in PRIORITY_ORDER),
            "Tổng số lượt phát",
            "Số lượt bị dừng",
            "Số phút phát",
            "Số lượt chưa rõ thời lượng",
            "Số lượt cụm loa được giao",
            "Số lượt cụm loa phát xong",
            "Tỉ lệ phát thành công (%)",
            "Số cụm loa",
            "Số giờ mất kết nối",
        ]
        rows = [
            [
                summary.label,
                zone.zone_id,
                zone.zone_name,
                *(zone.by_priority.get(p, 0) for p in PRIORITY_ORDER),
                zone.total,
                zone.cancelled,
                round(zone.minutes, 1),
                zone.unknown_airtime,
                zone.targeted,
                zone.finished,
                "" if zone.delivery_rate is None else round(zone.delivery_rate * 100, 1),
                zone.devices,
                round(zone.offline_hours, 1),
            ]
            for zone in summary.zones
        ]
        return to_csv(header, rows)

    def _airtime_of(
        self, row: _MonthRow, schedule_airtimes: Mapping[int, float | None]
    ) -> float | None:
        """How long a broadcast sounds: a relay's length, the media's length × repeat, or the
        schedule's airtime; None when none is known."""
        if row.content == ContentType.RELAY:
            return row.duration_s
        if row.media_sha256:
            seconds = self.media_duration_s(row.media_sha256)
            if seconds is not None:
                return seconds * max(1, row.repeat)
        if row.schedule_id is not None:
            return schedule_airtimes.get(row.schedule_id)
        return None

    def media_duration_s(self, sha256: str) -> float | None:
        """The stored media's playing time (`MediaStore.duration_s`: measured once per sha256)."""
        try:
            return self._media.duration_s(sha256)
        except (audio.AudioError, OSError) as exc:
            _LOGGER.warning("cannot measure media %s: %s", sha256[:12], exc)
            return None


# --- CSV -----------------------------------------------------------------------------------


def csv_cell(value: object) -> object:
    """A value as a spreadsheet cell: text that a spreadsheet would run as a formula gets a
    leading apostrophe (OWASP's advice against CSV injection); numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "có" if value else "không"
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.lstrip(" ").startswith(_FORMULA_START):
        return "'" + text
    return text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with a byte-order mark (so Excel reads Vietnamese), CRLF lines, RFC 4180 quoting."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_cell(name) for name in header])
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# --- offline time --------------------------------------------------------------------------


def offline_seconds(
    transitions: Sequence[tuple[datetime, bool]],
    online_now: bool,
    start: datetime,
    end: datetime,
) -> float:
    """Seconds offline within [start, end), from every transition of one device in time order.

    Before its first transition a device was in the opposite state; with no transitions at all
    it counts by its current state.
    """
    if end <= start:
        return 0.0
    if not transitions:
        return 0.0 if online_now else (end - start).total_seconds()
    online = not transitions[0][1]
    for at, state in transitions:
        if at > start:
            break
        online = state
    total, cursor = 0.0, start
    for at, state in transitions:
        if at <= start:
            continue
        if at >= end:
            break
        if not online:
            total += (at - cursor).total_seconds()
        cursor, online = at, state
    if not online:
        total += (end - cursor).total_seconds()
    return total


def presence_changes(
    session: Session, devices: Select[tuple[str]], start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, int, bool]]]:
    """Per receiver of `devices` (a subquery of ids): its last online/offline change at or
    before `start`, its changes in the month and its first change at or after `end`, as
    (at, row id, online) in time order. Three queries whatever the number of receivers."""
    mine = DevicePresence.device_id.in_(devices.scalar_subquery())
    columns = (
        DevicePresence.device_id,
        DevicePresence.at,
        DevicePresence.id,
        DevicePresence.online,
    )
    changes: dict[str, list[tuple[datetime, int, bool]]] = {}
    for bound, pick in (
        (DevicePresence.at <= start, func.max),
        (DevicePresence.at >= end, func.min),
    ):
        edge = (
            select(DevicePresence.device_id, pick(DevicePresence.at).label("at"))
            .where(bound, mine)
            .group_by(DevicePresence.device_id)
            .subquery()
        )
        query = select(*columns).join(
            edge, and_(edge.c.device_id == DevicePresence.device_id, edge.c.at == DevicePresence.at)
        )
        for device_id, at, row_id, online in session.execute(query):
            changes.setdefault(device_id, []).append((at, row_id, online))
    during = select(*columns).where(DevicePresence.at > start, DevicePresence.at < end, mine)
    for device_id, at, row_id, online in session.execute(during):
        changes.setdefault(device_id, []).append((at, row_id, online))
    for rows in changes.values():
        rows.sort()
    return changes


def device_offline_s(
    changes: Sequence[tuple[datetime, int, bool]],
    online_now: bool,
    created_at: datetime | None,
    start: datetime,
    end: datetime,
) -> tuple[float, datetime]:
    """A receiver's offline seconds in [start, end) from its registration on (`begin`, also
    returned), from `presence_changes`' rows: the last change at or before `begin`, those after
    it, and only when there is none of those the first one after the month."""
    begin = max(start, created_at) if created_at else start
    before = [row for row in changes if row[0] <= begin][-1:]
    inside = [row for row in changes if begin < row[0] < end]
    after = [row for row in changes if row[0] >= end][:1] if not before and not inside else []
    transitions = [(at, online) for at, _id, online in (*before, *inside, *after)]
    return offline_seconds(transitions, online_now, begin, end), begin


def _device_months(
    session: Session, tree: zones.ZoneTree, top: str | None, start: datetime, end: datetime
) -> list[DeviceMonth]:
    """Every receiver in `top` and below (None: all of them), by id, with its offline time."""
    ids = select(Device.id)
    if top is not None:
        ids = ids.where(Device.zone_id.in_(zones.subtree_select([top])))
    query = select(Device.id, Device.name, Device.zone_id, Device.online, Device.created_at)
    query = query.where(Device.id.in_(ids.scalar_subquery())).order_by(Device.id)
    devices = list(session.execute(query))
    changes = presence_changes(session, ids, start, end)
    found = []
    for device_id, name, zone_id, online, created_at in devices:
        seconds, begin = device_offline_s(
            changes.get(device_id, []), online, created_at, start, end
        )
        zone = tree.by_id.get(zone_id)
        found.append(
            DeviceMonth(
                device_id=device_id,
                name=name,
                zone_id=zone_id,
                zone_name=zone.name if zone is not None else zone_id,
                offline_s=seconds,
                measured_s=max(0.0, (end - begin).total_seconds()),
                online_now=online,
            )
        )
    return found


@dataclass(frozen=True)
class _MonthRow:
    """What the monthly figures read of a broadcast (no row object, no deliveries loaded)."""

    id: int
    priority: str
    status: str
    zone_ids: list[str]
    device_ids: list[str]
    content: str
    duration_s: float | None
    media_sha256: str | None
    repeat: int
    schedule_id: int | None


@dataclass(frozen=True)
class _Month:
    rows: list[_MonthRow]
    # (broadcast id, the receiver's zone, state, deliveries, of those started)
    deliveries: list[tuple[int, str, str, int, int]]
    schedule_airtimes: dict[int, float | None]


def _month_broadcasts(session: Session, wanted: LogFilter, top: str | None) -> _Month:
    """The month's log rows that reached `top` (None: all), their deliveries to the receivers
    of `top` counted per receiver's zone and state, and their schedules' airtimes: three
    queries whatever the number of broadcasts, zones or receivers."""
    condition = _log_condition(session, wanted)
    rows = [
        _MonthRow(*row[:3], list(row[3] or []), list(row[4] or []), *row[5:])
        for row in session.execute(
            select(
                Broadcast.id,
                Broadcast.priority,
                Broadcast.status,
                Broadcast.zone_ids,
                Broadcast.device_ids,
                Broadcast.content,
                Broadcast.duration_s,
                Broadcast.media_sha256,
                Broadcast.repeat,
                Broadcast.schedule_id,
            )
            .where(condition)
            .order_by(_when().desc(), Broadcast.id.desc())
        )
    ]
    if not rows:
        return _Month([], [], {})
    # the month's log rows by time alone: the deliveries to the scope's receivers are of
    # broadcasts that reached it anyway, and PostgreSQL joins the reach's JSON conditions to
    # every delivery badly (484 ms for a province, where this takes a few)
    in_month = _log_condition(session, replace(wanted, zone_id=None))
    ids = select(Broadcast.id).where(in_month).scalar_subquery()
    deliveries = (
        select(
            Delivery.broadcast_id,
            Device.zone_id,
            Delivery.state,
            func.count(),
            func.count(Delivery.started_at),
        )
        .join(Device, Device.id == Delivery.device_id)
        .where(Delivery.broadcast_id.in_(ids))
        .group_by(Delivery.broadcast_id, Device.zone_id, Delivery.state)
    )
    if top is not None:
        deliveries = deliveries.where(Device.zone_id.in_(zones.subtree_select([top])))
    airtimes: dict[int, float | None] = {}
    if any(row.schedule_id is not None for row in rows):
        scheduled = select(Broadcast.schedule_id).where(in_month).scalar_subquery()
        query = select(Schedule.id, Schedule.airtime_s).where(Schedule.id.in_(scheduled))
        airtimes = {schedule_id: seconds for schedule_id, seconds in session.execute(query)}
    return _Month(rows, [tuple(row) for row in session.execute(deliveries)], airtimes)


class _MonthReach:
    """Which zones of the scope each broadcast reached, and each zone's share of its
    deliveries, worked out in memory from `_Month` and the zone tree (the rule of `_reached`:
    the broadcast targeted the zone, a zone above or below it, or one of its receivers, named
    or with a delivery)."""

    def __init__(
        self, tree: zones.ZoneTree, in_scope: set[str], device_zones: Mapping[str, str]
    ) -> None:
        self._tree = tree
        self._scope = in_scope
        self._device_zones = device_zones
        self._up_cache: dict[str, list[str]] = {}
        self.reached: dict[str, set[int]] = {}
        # (broadcast, zone) → [targeted, finished, started or finished]
        self.counts: dict[tuple[int, str], list[int]] = {}
        self._positions: dict[int, int] | None = None  # broadcast id → its place in the log

    def _up(self, zone_id: str) -> list[str]:
        """The zone and every zone above it, those of the scope."""
        if zone_id not in self._up_cache:
            self._up_cache[zone_id] = [
                z.id for z in self._tree.ancestors_and_self(zone_id) if z.id in self._scope
            ]
        return self._up_cache[zone_id]

    def add_broadcast(self, row: _MonthRow) -> None:
        found: set[str] = set()
        for target in row.zone_ids:
            if target in self._tree.by_id:
                found.update(self._up(target))
                found.update(self._tree.subtree_ids([target]) & self._scope)
        for device_id in row.device_ids:
            zone_id = self._device_zones.get(device_id)
            if zone_id is not None:
                found.update(self._up(zone_id))
        for zone_id in found:
            self.reached.setdefault(zone_id, set()).add(row.id)

    def add_deliveries(
        self, broadcast_id: int, zone_id: str, state: str, count: int, started: int
    ) -> None:
        finished = count if state == DeliveryState.FINISHED.value else 0
        for above in self._up(zone_id):
            self.reached.setdefault(above, set()).add(broadcast_id)
            tally = self.counts.setdefault((broadcast_id, above), [0, 0, 0])
            if state != DeliveryState.STOPPED.value:
                tally[0] += count
                tally[1] += finished
            tally[2] += started + finished

    def zone_month(
        self,
        zone: zones.TreeZone,
        rows: Sequence[_MonthRow],
        airtime: Callable[[_MonthRow], float | None],
        devices: Sequence[DeviceMonth],
    ) -> ZoneMonth:
        if self._positions is None:
            self._positions = {row.id: n for n, row in enumerate(rows)}
        positions = self._positions
        # the broadcasts that reached the zone, in the log's order (not every row per zone)
        reached = sorted(positions[i] for i in self.reached.get(zone.id, ()) if i in positions)
        by_priority: Counter[str] = Counter()
        cancelled = targeted = finished = unknown = total = 0
        seconds = 0.0
        for position in reached:
            row = rows[position]
            total += 1
            by_priority[row.priority] += 1
            cancelled += row.status == BroadcastStatus.CANCELLED.value
            tally = self.counts.get((row.id, zone.id))
            if tally is None:
                continue
            targeted += tally[0]
            finished += tally[1]
            if tally[2]:
                length = airtime(row)
                if length is None:
                    unknown += 1
                else:
                    seconds += length
        return ZoneMonth(
            zone_id=zone.id,
            zone_name=zone.name,
            kind=zone.kind,
            by_priority={p: by_priority.get(p, 0) for p in PRIORITY_ORDER},
            total=total,
            cancelled=cancelled,
            airtime_s=seconds,
            unknown_airtime=unknown,
            targeted=targeted,
            finished=finished,
            devices=len(devices),
            offline_s=sum(device.offline_s for device in devices),
        )


# --- queries -------------------------------------------------------------------------------


def _when() -> ColumnElement[datetime]:
    return func.coalesce(Broadcast.occurrence_at, Broadcast.created_at)


def _time_of(broadcast: Broadcast) -> datetime:
    return broadcast.occurrence_at or broadcast.created_at


def tree_ordered(found: Iterable[Zone]) -> list[Zone]:
    """In tree order: a province, then each of its communes by name, each followed by its
    villages by name (a single-commune installation: the commune, then its villages)."""

    def path(zone: Zone) -> tuple[tuple[str, str], ...]:
        return tuple((z.name, z.id) for z in reversed(zones.ancestors_and_self(zone)))

    return sorted(found, key=path)


def with_depths(ordered: Sequence[Zone]) -> list[tuple[Zone, int]]:
    """Zones in tree order, each with its depth below the shallowest of them."""
    depths = [len(zones.ancestors_and_self(zone)) for zone in ordered]
    top = min(depths, default=0)
    return [(zone, depth - top) for zone, depth in zip(ordered, depths, strict=True)]


def _authorized_zone(session: Session, user: User, zone_id: str) -> Zone:
    zone = session.get(Zone, zone_id)
    if zone is None:
        raise ValidationError(
            "zone", N_("không có khu vực “%(id)s”"), "unknown_zone", id=zone_id[:63]
        )
    if not zones.in_scope(session, user, zone.id):
        raise PermissionDenied(
            N_("người dùng “%(user)s” không được xem báo cáo của khu vực “%(zone)s”"),
            "zone_out_of_reach",
            user=user.username,
            zone=zone_id,
        )
    return zone


def _authorized_filter(session: Session, user: User, wanted: LogFilter) -> LogFilter:
    """A zone-bound account's reports are its own zone's: no zone chosen means theirs."""
    if wanted.zone_id is not None:
        _authorized_zone(session, user, wanted.zone_id)
        return wanted
    if user.zone_id is not None:
        return replace(wanted, zone_id=user.zone_id)
    return wanted


def _zone_device_ids(session: Session, zone_id: str | None) -> list[str] | None:
    """The receivers of a zone and below; None when no zone is chosen (all receivers)."""
    if zone_id is None:
        return None
    return list(session.scalars(zones.devices_select([zone_id]).order_by(Device.id)))


def _log_condition(session: Session, wanted: LogFilter) -> ColumnElement[bool]:
    now = utcnow()
    conditions: list[ColumnElement[bool]] = [
        or_(
            Broadcast.occurrence_at.is_(None),
            Broadcast.occurrence_at <= now,
            Broadcast.status != BroadcastStatus.SCHEDULED.value,
        )
    ]
    if wanted.zone_id is not None:
        zone = session.get(Zone, wanted.zone_id)
        if zone is None:
            raise ValidationError(
                "zone", N_("không có khu vực “%(id)s”"), "unknown_zone", id=wanted.zone_id[:63]
            )
        conditions.append(_reached(zone))
    if wanted.date_from is not None:
        conditions.append(_when() >= local_day_start(wanted.date_from))
    if wanted.date_to is not None:
        conditions.append(_when() < local_day_start(wanted.date_to) + timedelta(days=1))
    if wanted.source is not None:
        conditions.append(Broadcast.source == wanted.source)
    if wanted.content is not None:
        conditions.append(Broadcast.content == wanted.content)
    if wanted.priority is not None:
        conditions.append(Broadcast.priority == wanted.priority)
    return and_(*conditions)


def _reached(zone: Zone) -> ColumnElement[bool]:
    """The broadcast reached `zone`: it targeted the zone, a zone above or below it, or one of
    its receivers (named, or with a delivery). Subqueries, not lists of ids: a province has
    hundreds of zones and thousands of receivers."""
    below = zones.subtree_select([zone.id])
    devices = zones.devices_select([zone.id])
    return or_(
        aimed_at_any([z.id for z in zones.ancestors_and_self(zone)]),
        aimed_at_any(below),
        json_list_has_any(Broadcast.device_ids, devices),
        delivered_to_any(devices),
    )


def _all_broadcasts(session: Session, wanted: LogFilter) -> list[Broadcast]:
    return list(
        session.scalars(
            select(Broadcast)
            .options(selectinload(Broadcast.deliveries), selectinload(Broadcast.created_by))
            .where(_log_condition(session, wanted))
            .order_by(_when().desc(), Broadcast.id.desc())
        )
    )


def _delivery_counts(
    session: Session, broadcast_ids: Sequence[int], zone: Zone | None
) -> dict[int, DeliveryCounts]:
    """The deliveries of `broadcast_ids` to the receivers of `zone` (all, without one), by
    state. A commune's or village's receivers are a few of a province's: their own deliveries
    are read (by receiver); a province's are most of them: the broadcasts' deliveries are read
    and filtered."""
    if not broadcast_ids:
        return {}
    query = (
        select(Delivery.broadcast_id, Delivery.state, func.count())
        .where(Delivery.broadcast_id.in_(broadcast_ids))
        .group_by(Delivery.broadcast_id, Delivery.state)
    )
    if zone is not None:
        devices = zones.devices_select([zone.id])
        if zone.kind == const.ZoneKind.PROVINCE:
            query = query.where(Delivery.device_id.in_(devices))
        else:
            query = query.where(in_subquery(Delivery.device_id, devices))
    tally: dict[int, Counter[str]] = {}
    for broadcast_id, state, count in session.execute(query):
        tally.setdefault(broadcast_id, Counter())[state] += count
    return {broadcast_id: _count(states.elements()) for broadcast_id, states in tally.items()}


def _count(states: Iterable[str]) -> DeliveryCounts:
    tally = Counter(states)
    return DeliveryCounts(
        targeted=sum(tally.values()),
        finished=tally[DeliveryState.FINISHED.value],
        failed=tally[DeliveryState.FAILED.value],
        stopped=tally[DeliveryState.STOPPED.value],
    )


def _log_row(broadcast: Broadcast, counts: DeliveryCounts) -> LogRow:
    return LogRow(
        id=broadcast.id,
        at=_time_of(broadcast),
        title=broadcast.title,
        source=broadcast.source,
        content=broadcast.content,
        priority=broadcast.priority,
        status=broadcast.status,
        zone_ids=list(broadcast.zone_ids),
        device_ids=list(broadcast.device_ids or []),
        created_by=broadcast.created_by.username if broadcast.created_by else "",
        counts=counts,
    )


def _zone_names(session: Session) -> dict[str, str]:
    return {zone.id: zone.name for zone in session.scalars(select(Zone))}


__all__ = [
    "CONTENT_LABELS",
    "PRIORITY_LABELS",
    "SOURCE_LABELS",
    "DeliveryCounts",
    "DeviceMonth",
    "LogFilter",
    "LogPage",
    "LogRow",
    "MonthlySummary",
    "Reports",
    "ZoneChoice",
    "ZoneMonth",
    "csv_cell",
    "offline_seconds",
    "parse_month",
    "parse_page",
    "to_csv",
]
