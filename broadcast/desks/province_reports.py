"""Reports up to the province (báo cáo toàn tỉnh, issue 13 item 5): per commune of a province,
its receivers (online, needing attention), the minutes broadcast and the delivery rate of a
local calendar month, and the province bulletins it played, holds or declined.

Who may read it: a role allowed `Action.READ_REPORTS` whose account is bound to a province
(that province's communes only) or to no zone (installation-wide: any province, or the
communes at the root of a single-commune installation). Commune and village accounts are
refused: their report is the commune's own (`reporting.Reports`, `?zone=`).

Everything is counted in SQL with GROUP BY: the number of queries is the same for 2 communes
and for 100 with 2,000 receivers (`tests/broadcast/desks/test_province_reports.py` counts them).
The month's deliveries are read in one pass, counted per commune, broadcast and state (a row per
broadcast heard in a commune, not per receiver), and every delivery figure is summed from that.
A receiver belongs to the commune of its zone: the zone itself when it is a commune, else the
zone's parent (villages sit directly under communes).

The figures follow the commune's monthly report (`reporting`), so a drill-down shows the same
numbers, with one difference: a broadcast counts for a commune when one of its receivers had a
delivery of it (the commune report also counts broadcasts that only named the commune).

- minutes: the airtime of each broadcast that at least one of the commune's receivers started
  or finished (a relay's length, else the media's length × repeat, else the schedule's
  airtime); the province's total is the communes' sum (a bulletin heard in three communes
  counts three times);
- delivery rate: finished deliveries / deliveries of the commune's receivers in the month,
  deliveries a person stopped left out of both;
- offline hours (the monthly report only): `reporting.offline_seconds` of each receiver,
  summed per commune;
- province bulletins: `ProvinceBulletinCounts`, from each bulletin's forward to the commune
  (`source_bulletins`, Thông tư 39): played, held (in its inbox or programme), declined.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from broadcast.const import BroadcastStatus, DeliveryState, ZoneKind
from broadcast.desks import source_bulletins
from broadcast.desks.reporting import (
    PRIORITY_LABELS,
    PRIORITY_ORDER,
    Reports,
    device_offline_s,
    month_bounds,
    presence_changes,
    to_csv,
)
from broadcast.errors import N_, NotFound, PermissionDenied
from broadcast.fleet import receivers
from broadcast.people import accounts, permissions
from broadcast.people.permissions import Action
from broadcast.store.db import Database
from broadcast.store.models import (
    Broadcast,
    Delivery,
    Device,
    Schedule,
    User,
    Zone,
    utcnow,
)
from wire.protocol import ContentType

_LOGGER = logging.getLogger(__name__)
TOTAL_NAME = "Tổng cộng"  # the total row's name where there is no province (CSV, API)


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvinceBulletinCounts:
    """What a commune did with the province's bulletins of the month (Thông tư 39): played,
    still waiting in its inbox or programme, declined (`_bulletin_counts`)."""

    played: int = 0
    waiting: int = 0
    declined: int = 0

    def __add__(self, other: ProvinceBulletinCounts) -> ProvinceBulletinCounts:
        return ProvinceBulletinCounts(
            self.played + other.played, self.waiting + other.waiting, self.declined + other.declined
        )


@dataclass(frozen=True)
class CommuneFigures:
    """One commune's month (or the province's sum, `zone_id` the province's)."""

    zone_id: str
    name: str
    code: str | None
    receivers: int = 0
    online: int = 0
    attention: int = 0  # offline, or their last heartbeat unhealthy (`Device.health_ok`)
    broadcasts: int = 0  # with a delivery to one of its receivers in the month
    by_priority: dict[str, int] = field(default_factory=dict)
    cancelled: int = 0
    airtime_s: float = 0.0
    unknown_airtime: int = 0  # broadcasts played whose length is not known
    targeted: int = 0  # deliveries, those a person stopped left out
    finished: int = 0
    bulletins: ProvinceBulletinCounts = ProvinceBulletinCounts()
    offline_s: float | None = None  # its receivers' offline time in the month; None: not asked

    @property
    def offline_hours(self) -> float | None:
        return None if self.offline_s is None else self.offline_s / 3600

    @property
    def minutes(self) -> float:
        return self.airtime_s / 60

    @property
    def delivery_rate(self) -> float | None:
        return self.finished / self.targeted if self.targeted else None


@dataclass(frozen=True)
class ProvinceChoice:
    id: str
    name: str


@dataclass(frozen=True)
class ProvinceReport:
    """A province's month, commune by commune; `province_id` None: the communes at the root
    of an installation that has no province."""

    province_id: str | None
    province_name: str
    year: int
    month: int
    start: datetime  # UTC, naive
    end: datetime
    measured_until: datetime  # the end, or now for the current month
    communes: list[CommuneFigures]
    total: CommuneFigures
    provinces: list[ProvinceChoice]  # what the reader may choose between
    generated_at: datetime = field(default_factory=utcnow)

    @property
    def label(self) -> str:
        return f"{self.month:02d}/{self.year}"


# --- the desk ------------------------------------------------------------------------------


class ProvinceReports:
    """The province dashboard's, report's and API's one entry point
    (`BroadcastService.province_reports`)."""

    def __init__(self, db: Database, reports: Reports) -> None:
        self._db = db
        self._reports = reports  # the media lengths it has measured (cached per sha256)

    def may_read(self, user_id: int) -> bool:
        """Whether the pages should offer the province report to this user: allowed to read
        reports, bound to a province or installation-wide, and a province exists (an
        installation-wide account of a single-commune installation has its commune's
        report)."""
        with self._db.session() as session:
            user = session.get(User, user_id)
            if user is None or not user.active or not _province_level(user):
                return False
            if user.zone is not None:
                return True
            found = session.scalar(
                select(Zone.id).where(Zone.kind == ZoneKind.PROVINCE.value).limit(1)
            )
            return found is not None

    def report(
        self,
        user_id: int,
        year: int,
        month: int,
        province_id: str | None = None,
        *,
        offline: bool = False,
    ) -> ProvinceReport:
        """The month of the province `province_id` (default: the user's, or the first by name
        for an installation-wide account), commune by commune. A fixed number of queries;
        `offline` adds the receivers' offline time (the monthly report: four more queries,
        whose rows are every online/offline change of the month)."""
        start, end = month_bounds(year, month)
        measured_until = max(start, min(end, utcnow()))
        with self._db.session() as session:
            user = _require_reader(session, user_id)
            provinces = _province_choices(session, user)
            province = _chosen_province(session, user, provinces, province_id)
            communes = list(
                session.scalars(
                    select(Zone)
                    .where(
                        Zone.kind == ZoneKind.COMMUNE.value,
                        Zone.parent_id.is_(None)
                        if province is None
                        else Zone.parent_id == province.id,
                    )
                    .order_by(Zone.name, Zone.id)
                )
            )
            ids = [commune.id for commune in communes]
            fleet = _receiver_counts(session, ids)
            month_rows = _month_deliveries(session, ids, start, end)
            deliveries = _delivery_counts(month_rows)
            reached = _broadcast_counts(month_rows)
            airtime = self._airtime(month_rows)
            bulletins = _bulletin_counts(session, ids, start, end)
            offline_s = _offline_seconds(session, ids, start, measured_until) if offline else None
            rows = [
                _figures(
                    commune.id,
                    commune.name,
                    commune.code,
                    fleet.get(commune.id, (0, 0, 0)),
                    deliveries.get(commune.id, Counter()),
                    reached.get(commune.id, {}),
                    airtime.get(commune.id, (0.0, 0)),
                    bulletins.get(commune.id, ProvinceBulletinCounts()),
                    None if offline_s is None else offline_s.get(commune.id, 0.0),
                )
                for commune in communes
            ]
            total = _province_total(
                province.id if province is not None else "",
                province.name if province is not None else TOTAL_NAME,
                province.code if province is not None else None,
                rows,
                _distinct_broadcasts(month_rows),
            )
            return ProvinceReport(
                province_id=province.id if province is not None else None,
                province_name=province.name if province is not None else "",
                year=year,
                month=month,
                start=start,
                end=end,
                measured_until=measured_until,
                communes=rows,
                total=total,
                provinces=provinces,
            )

    def report_csv(
        self, user_id: int, year: int, month: int, province_id: str | None = None
    ) -> bytes:
        """One row per commune, then the province's (Vietnamese headers, as the commune
        report's CSV; UTF-8 with a BOM for Excel)."""
        found = self.report(user_id, year, month, province_id, offline=True)
        header = [
            "Tháng",
            "Mã khu vực",
            "Mã hành chính",
            "Xã / phường",
            "Số cụm loa",
            "Trực tuyến",
            "Cần chú ý",
            *(f"Số lượt {PRIORITY_LABELS[p].lower()}" for p in PRIORITY_ORDER),
            "Tổng số lượt phát",
            "Số lượt bị dừng",
            "Số phút phát",
            "Số lượt chưa rõ thời lượng",
            "Số lượt cụm loa được giao",
            "Số lượt cụm loa phát xong",
            "Tỉ lệ phát thành công (%)",
            "Số giờ mất kết nối",
            "Bản tin tỉnh đã phát",
            "Bản tin tỉnh đang chờ",
            "Bản tin tỉnh bị từ chối",
        ]
        rows = [_csv_row(found.label, figures) for figures in [*found.communes, found.total]]
        _LOGGER.info(
            "province report exported: %s, %s, %d communes",
            found.province_id or "-",
            found.label,
            len(found.communes),
        )
        return to_csv(header, rows)

    def _airtime(self, month_rows: Sequence[_MonthDeliveries]) -> dict[str, tuple[float, int]]:
        """Per commune: the seconds played and how many played broadcasts have no known
        length, grouped by what decides a broadcast's length (a daily bulletin's thirty runs
        are one group); each media is measured once (cached)."""
        played: dict[tuple[str, tuple[Any, ...]], set[int]] = {}
        for row in month_rows:
            if row.started or row.state == DeliveryState.FINISHED.value:
                played.setdefault((row.commune_id, row.length_key), set()).add(row.broadcast_id)
        seconds: dict[str, float] = {}
        unknown: Counter[str] = Counter()
        for (commune_id, key), broadcast_ids in played.items():
            length = self._length_s(*key)
            if length is None:
                unknown[commune_id] += len(broadcast_ids)
            else:
                seconds[commune_id] = seconds.get(commune_id, 0.0) + length * len(broadcast_ids)
        return {
            commune_id: (seconds.get(commune_id, 0.0), unknown[commune_id])
            for commune_id in set(seconds) | set(unknown)
        }

    def _length_s(
        self,
        content: str,
        duration_s: float | None,
        sha256: str | None,
        repeat: int | None,
        schedule_airtime_s: float | None,
    ) -> float | None:
        """`Reports.airtime_s`'s rule on columns already read (no query per broadcast)."""
        if content == ContentType.RELAY:
            return duration_s
        if sha256:
            seconds = self._reports.media_duration_s(sha256)
            if seconds is not None:
                return seconds * max(1, repeat or 1)
        return schedule_airtime_s


# --- who may read --------------------------------------------------------------------------


def _province_level(user: User) -> bool:
    """READ_REPORTS, and bound to a province or to no zone."""
    if not permissions.allowed(user.role, Action.READ_REPORTS):
        return False
    return user.zone is None or user.zone.kind == ZoneKind.PROVINCE.value


def _require_reader(session: Session, user_id: int) -> User:
    user = accounts.require_user(session, user_id, Action.READ_REPORTS)
    if not _province_level(user):
        raise PermissionDenied(
            N_(
                "báo cáo toàn tỉnh chỉ dành cho tài khoản cấp tỉnh hoặc toàn hệ thống;"
                " hãy xem báo cáo của xã mình"
            ),
            "not_province_level",
        )
    return user


def _province_choices(session: Session, user: User) -> list[ProvinceChoice]:
    if user.zone is not None:
        return [ProvinceChoice(user.zone.id, user.zone.name)]
    found = session.execute(
        select(Zone.id, Zone.name)
        .where(Zone.kind == ZoneKind.PROVINCE.value)
        .order_by(Zone.name, Zone.id)
    )
    return [ProvinceChoice(zone_id, name) for zone_id, name in found]


def _chosen_province(
    session: Session, user: User, choices: list[ProvinceChoice], wanted: str | None
) -> Zone | None:
    """The province asked for if the user may read it (else NotFound, the same as an unknown
    one: a province account is not told of other provinces), or the first they may."""
    if wanted:
        if wanted not in {choice.id for choice in choices}:
            raise NotFound(N_("không có tỉnh “%(id)s”"), "unknown_province", id=wanted[:63])
        return session.get(Zone, wanted)
    if user.zone is not None:
        return user.zone
    return session.get(Zone, choices[0].id) if choices else None


# --- the queries: one each, whatever the number of communes and receivers ----------------


def _commune_of() -> ColumnElement[Any]:
    """The commune a receiver's zone belongs to (needs `Zone` joined on `Device.zone_id`)."""
    return case((Zone.kind == ZoneKind.COMMUNE.value, Zone.id), else_=Zone.parent_id)


def _when() -> ColumnElement[datetime]:
    return func.coalesce(Broadcast.occurrence_at, Broadcast.created_at)


def _in_month(start: datetime, end: datetime) -> ColumnElement[bool]:
    """The broadcast's time (its run, or its creation) is in the month, and it is in the log
    (a planned run not yet due is not), as in `reporting`."""
    return and_(
        _when() >= start,
        _when() < end,
        or_(
            Broadcast.occurrence_at.is_(None),
            Broadcast.occurrence_at <= utcnow(),
            Broadcast.status != BroadcastStatus.SCHEDULED.value,
        ),
    )


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _receiver_counts(
    session: Session, commune_ids: Collection[str]
) -> dict[str, tuple[int, int, int]]:
    """Per commune: receivers, online, needing attention (`receivers.needs_attention`)."""
    if not commune_ids:
        return {}
    commune = _commune_of()
    query = (
        select(
            commune,
            func.count(Device.id),
            _count_where(Device.online),
            _count_where(receivers.needs_attention()),
        )
        .select_from(Device)
        .join(Zone, Zone.id == Device.zone_id)
        .where(commune.in_(commune_ids))
        .group_by(commune)
    )
    return {
        commune_id: (int(total), int(online), int(attention))
        for commune_id, total, online, attention in session.execute(query)
    }


@dataclass(frozen=True)
class _MonthDeliveries:
    """The month's deliveries of one broadcast in one commune in one state (one row of
    `_month_deliveries`), with what the figures read of the broadcast."""

    commune_id: str
    broadcast_id: int
    state: str
    count: int
    started: int  # of those, how many started
    priority: str
    cancelled: bool
    # what decides its length: content, duration_s, media_sha256, repeat, the schedule's airtime
    length_key: tuple[Any, ...]


def _month_deliveries(
    session: Session, commune_ids: Collection[str], start: datetime, end: datetime
) -> list[_MonthDeliveries]:
    """The month's deliveries to the communes' receivers, counted per commune, broadcast and
    state: one pass over them, which every figure of the report is summed from (a row per
    broadcast and commune, not per receiver)."""
    if not commune_ids:
        return []
    commune = _commune_of()
    cancelled = Broadcast.status == BroadcastStatus.CANCELLED.value
    grouped = (
        commune,
        Delivery.broadcast_id,
        Delivery.state,
        Broadcast.priority,
        cancelled,
        Broadcast.content,
        Broadcast.duration_s,
        Broadcast.media_sha256,
        Broadcast.repeat,
        Schedule.airtime_s,
    )
    query = (
        select(*grouped[:3], func.count(Delivery.id), func.count(Delivery.started_at))
        .add_columns(*grouped[3:])
        .select_from(Delivery)
        .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
        .join(Device, Device.id == Delivery.device_id)
        .join(Zone, Zone.id == Device.zone_id)
        .outerjoin(Schedule, Schedule.id == Broadcast.schedule_id)
        .where(_in_month(start, end), commune.in_(commune_ids))
        .group_by(*grouped)
    )
    return [
        _MonthDeliveries(
            commune_id,
            broadcast_id,
            state,
            int(count),
            int(started),
            priority,
            bool(was_cancelled),
            tuple(length),
        )
        for commune_id, broadcast_id, state, count, started, priority, was_cancelled, *length in (
            session.execute(query)
        )
    ]


def _delivery_counts(month_rows: Sequence[_MonthDeliveries]) -> dict[str, Counter[str]]:
    """Per commune: deliveries of the month by state."""
    found: dict[str, Counter[str]] = {}
    for row in month_rows:
        found.setdefault(row.commune_id, Counter())[row.state] += row.count
    return found


def _broadcast_counts(
    month_rows: Sequence[_MonthDeliveries],
) -> dict[str, dict[tuple[str, bool], int]]:
    """Per commune: broadcasts with a delivery there, by (priority, cancelled)."""
    seen: dict[str, dict[tuple[str, bool], set[int]]] = {}
    for row in month_rows:
        kind = (row.priority, row.cancelled)
        seen.setdefault(row.commune_id, {}).setdefault(kind, set()).add(row.broadcast_id)
    return {
        commune_id: {kind: len(ids) for kind, ids in kinds.items()}
        for commune_id, kinds in seen.items()
    }


def _distinct_broadcasts(month_rows: Sequence[_MonthDeliveries]) -> dict[tuple[str, bool], int]:
    """The province's broadcasts, each once however many communes it reached."""
    seen: dict[tuple[str, bool], set[int]] = {}
    for row in month_rows:
        seen.setdefault((row.priority, row.cancelled), set()).add(row.broadcast_id)
    return {kind: len(ids) for kind, ids in seen.items()}


def _bulletin_counts(
    session: Session, commune_ids: Collection[str], start: datetime, end: datetime
) -> dict[str, ProvinceBulletinCounts]:
    """Per commune: the province bulletins of the month it played, holds and declined, from
    their forwards (`source_bulletins.forward_counts`: one GROUP BY commune, state)."""
    return {
        commune: ProvinceBulletinCounts(*counts)
        for commune, counts in source_bulletins.forward_counts(
            session, commune_ids, start, end
        ).items()
    }


def _offline_seconds(
    session: Session, commune_ids: Collection[str], start: datetime, end: datetime
) -> dict[str, float]:
    """Per commune: its receivers' offline seconds in [start, end), by `reporting`'s rule
    (`offline_seconds`: each receiver from its registration on, by its online/offline
    changes). Four queries whatever the number of receivers: the receivers, each one's last
    change before the month, the month's changes, and each one's first change after it (for a
    receiver whose only changes came later)."""
    if not commune_ids:
        return {}
    commune = _commune_of()
    devices = list(
        session.execute(
            select(Device.id, Device.online, Device.created_at, commune)
            .join(Zone, Zone.id == Device.zone_id)
            .where(commune.in_(commune_ids))
        )
    )
    in_communes = (
        select(Device.id).join(Zone, Zone.id == Device.zone_id).where(commune.in_(commune_ids))
    )
    changes = presence_changes(session, in_communes, start, end)
    found: dict[str, float] = {}
    for device_id, online_now, created_at, commune_id in devices:
        seconds, _begin = device_offline_s(
            changes.get(device_id, []), online_now, created_at, start, end
        )
        found[commune_id] = found.get(commune_id, 0.0) + seconds
    return found


# --- assembling ----------------------------------------------------------------------------


def _tally(reached: Mapping[tuple[str, bool], int]) -> tuple[dict[str, int], int, int]:
    by_priority = {p: 0 for p in PRIORITY_ORDER}
    for (priority, _cancelled), count in reached.items():
        by_priority[priority] = by_priority.get(priority, 0) + count
    cancelled = sum(count for (_p, was), count in reached.items() if was)
    return by_priority, sum(by_priority.values()), cancelled


def _figures(
    zone_id: str,
    name: str,
    code: str | None,
    fleet: tuple[int, int, int],
    states: Counter[str],
    reached: Mapping[tuple[str, bool], int],
    airtime: tuple[float, int],
    bulletins: ProvinceBulletinCounts,
    offline_s: float | None,
) -> CommuneFigures:
    by_priority, total, cancelled = _tally(reached)
    stopped = states[DeliveryState.STOPPED.value]
    return CommuneFigures(
        zone_id=zone_id,
        name=name,
        code=code,
        receivers=fleet[0],
        online=fleet[1],
        attention=fleet[2],
        broadcasts=total,
        by_priority=by_priority,
        cancelled=cancelled,
        airtime_s=airtime[0],
        unknown_airtime=airtime[1],
        targeted=sum(states.values()) - stopped,
        finished=states[DeliveryState.FINISHED.value],
        bulletins=bulletins,
        offline_s=offline_s,
    )


def _province_total(
    zone_id: str,
    name: str,
    code: str | None,
    rows: list[CommuneFigures],
    distinct: Mapping[tuple[str, bool], int],
) -> CommuneFigures:
    by_priority, total, cancelled = _tally(distinct)
    bulletins = ProvinceBulletinCounts()
    for row in rows:
        bulletins = bulletins + row.bulletins
    measured = [row.offline_s for row in rows if row.offline_s is not None]
    return CommuneFigures(
        zone_id=zone_id,
        name=name,
        code=code,
        receivers=sum(row.receivers for row in rows),
        online=sum(row.online for row in rows),
        attention=sum(row.attention for row in rows),
        broadcasts=total,
        by_priority=by_priority,
        cancelled=cancelled,
        airtime_s=sum(row.airtime_s for row in rows),
        unknown_airtime=sum(row.unknown_airtime for row in rows),
        targeted=sum(row.targeted for row in rows),
        finished=sum(row.finished for row in rows),
        bulletins=bulletins,
        offline_s=sum(measured) if len(measured) == len(rows) else None,
    )


def _csv_row(label: str, figures: CommuneFigures) -> list[object]:
    rate = figures.delivery_rate
    return [
        label,
        figures.zone_id,
        figures.code or "",
        figures.name,
        figures.receivers,
        figures.online,
        figures.attention,
        *(figures.by_priority.get(p, 0) for p in PRIORITY_ORDER),
        figures.broadcasts,
        figures.cancelled,
        round(figures.minutes, 1),
        figures.unknown_airtime,
        figures.targeted,
        figures.finished,
        "" if rate is None else round(rate * 100, 1),
        "" if figures.offline_hours is None else round(figures.offline_hours, 1),
        figures.bulletins.played,
        figures.bulletins.waiting,
        figures.bulletins.declined,
    ]


__all__ = [
    "CommuneFigures",
    "ProvinceBulletinCounts",
    "ProvinceChoice",
    "ProvinceReport",
    "ProvinceReports",
]
