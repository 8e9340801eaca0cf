"""The week calendar of a zone (lịch phát theo tuần): everything planned to sound there.

For one zone and one local week (Monday to Sunday, Asia/Ho_Chi_Minh), every run of every active
schedule that reaches the zone, expanded from the schedule's rule (`programmes.occurrences`),
plus the broadcasts sent at once (announcements, corrections, "phát ngay") already in the log.
A schedule reaches a zone when their footprints are related: a schedule on the commune sounds
in its villages, and a village's schedule shows in the commune's calendar too.

Two entries that would sound at the same time in related zones are marked as conflicts (an
emergency preempts, but two routine items would wait for each other). Runs cancelled one by
one, runs from before their schedule existed, and broadcasts that failed or were cancelled are
left out: the calendar shows what plays.

Every account sees the zones of its scope (its zone and below; an installation-wide account
every zone): a commune's week shows what its province sends there, never another commune's.
A schedule is cancelled here only by someone who could have made it (every target theirs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import audio
from broadcast import clock
from broadcast.const import BroadcastStatus
from broadcast.desks import reporting
from broadcast.desks.bulletins import cancellable_schedules
from broadcast.desks.records import ScheduleRecord
from broadcast.errors import N_, NotFound, PermissionDenied, ValidationError
from broadcast.people import accounts, permissions, targets, zones
from broadcast.people.permissions import Action
from broadcast.programme import planning
from broadcast.programme import rules as programmes
from broadcast.store.db import Database
from broadcast.store.models import Broadcast, Schedule, User, Zone, utcnow

_LOGGER = logging.getLogger(__name__)

LEFT_OUT = (BroadcastStatus.FAILED.value, BroadcastStatus.CANCELLED.value)


@dataclass(frozen=True)
class Conflict:
    """The other entry an entry sounds together with."""

    title: str
    at: datetime  # UTC, naive


@dataclass(frozen=True)
class Entry:
    at: datetime  # UTC, naive
    end: datetime  # at + airtime
    title: str
    priority: str  # wire.protocol.Priority value
    kind: str  # the schedule's kind ("daily", "series", …) or the broadcast's source
    zone_ids: tuple[str, ...]
    device_ids: tuple[str, ...]
    footprint: frozenset[str] = field(repr=False)  # zones where it sounds
    reach: frozenset[str] = field(repr=False)  # those, their ancestors and descendants
    schedule_id: int | None = None
    bulletin_id: int | None = None
    broadcast_id: int | None = None
    conflicts: tuple[Conflict, ...] = ()

    def overlaps(self, other: Entry) -> bool:
        if self.at == other.at:
            return True
        return self.at < other.end and other.at < self.end


@dataclass(frozen=True)
class Day:
    day: date  # local
    entries: list[Entry]


@dataclass(frozen=True)
class ZoneChoice:
    id: str
    name: str
    depth: int = 0  # below the first zone listed (a picker indents villages)


@dataclass(frozen=True)
class WeekCalendar:
    zone: ZoneChoice
    zones: list[ZoneChoice]  # the zones this user may choose, in tree order
    zone_names: dict[str, str]  # every zone's name, for the entries' targets
    start: date  # the local Monday
    days: list[Day]
    schedules: list[ScheduleRecord]  # those with runs this week, for "hủy lịch"
    can_cancel: bool  # the user's role may cancel schedules (`cancellable`: which ones)
    can_open_bulletins: bool
    cancellable: frozenset[int] = frozenset()  # schedules whose every target is the user's

    @property
    def previous(self) -> date:
        return self.start - timedelta(days=7)

    @property
    def next(self) -> date:
        return self.start + timedelta(days=7)

    @property
    def end(self) -> date:
        """The Sunday."""
        return self.start + timedelta(days=6)

    @property
    def conflict_count(self) -> int:
        return sum(1 for day in self.days for entry in day.entries if entry.conflicts)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def parse_week(text: str) -> date:
    """'2026-11-26' → the Monday of that week."""
    chosen = clock.parse_date(text, "week", N_("“%(text)s” không phải một ngày dạng 2026-11-30"))
    if chosen is None:
        raise ValidationError("week", N_("chọn một ngày trong tuần, dạng 2026-11-30"), "required")
    return monday_of(chosen)


def week_calendar(
    session: Session,
    user_id: int,
    zone_id: str = "",
    week: date | None = None,
    *,
    now: datetime | None = None,
    media: audio.MediaStore | None = None,
) -> WeekCalendar:
    """The zone's week (default: the account's zone, else the top of the tree; this week).

    `media`, when given, measures announcements' recorded length; without it they count as
    instants."""
    user = accounts.require_user(session, user_id, Action.VIEW)
    zone = _chosen_zone(session, user, zone_id)
    now = now or utcnow()
    monday = monday_of(week or programmes.local_today(now))
    start = programmes.local_midnight(monday)
    end = programmes.local_midnight(monday + timedelta(days=7))
    related = targets.related_zone_ids([zone])
    entries, shown = _schedule_entries(session, related, start, end)
    entries += _broadcast_entries(session, related, start, end, media)
    entries = _mark_conflicts(sorted(entries, key=lambda e: (e.at, e.title)))
    days = [Day(monday + timedelta(days=offset), []) for offset in range(7)]
    for entry in entries:
        local = programmes.local_today(entry.at)
        days[(local - monday).days].entries.append(entry)
    visible = zones.visible_zones(session, user)
    named = {z for entry in entries for z in entry.zone_ids}
    return WeekCalendar(
        zone=ZoneChoice(zone.id, zone.name),
        zones=[
            ZoneChoice(z.id, z.name, depth)
            for z, depth in reporting.with_depths(reporting.tree_ordered(visible))
        ],
        zone_names={  # the zones the user sees, those above and those the entries name
            **{z.id: z.name for z in session.scalars(select(Zone).where(Zone.id.in_(named)))},
            **zones.names_with_ancestors(visible),
        },
        start=monday,
        days=days,
        schedules=[ScheduleRecord.of(schedule) for schedule in shown],
        can_cancel=permissions.allowed(user.role, Action.SCHEDULE),
        can_open_bulletins=permissions.allowed(user.role, Action.READ_BULLETINS),
        cancellable=cancellable_schedules(session, user, shown),
    )


def _chosen_zone(session: Session, user: User, zone_id: str) -> Zone:
    """The zone asked for, else the user's own, else (installation-wide) the top of the tree:
    the province (everything planned in it), or a single-commune installation's commune."""
    own = user.zone
    if zone_id:
        zone = zones.get_zone(session, zone_id)
    elif own is not None:
        zone = own
    else:
        roots = session.scalars(select(Zone).where(Zone.parent_id.is_(None)))
        top = reporting.tree_ordered(roots)
        if not top:
            raise NotFound(N_("chưa có xã nào"), "no_commune")
        zone = top[0]
    if not zones.in_scope(session, user, zone.id):
        raise PermissionDenied(
            N_("người dùng “%(user)s” không được xem khu vực “%(zone)s”"),
            "zone_out_of_reach",
            user=user.username,
            zone=zone.id,
        )
    return zone


def _footprint(
    session: Session, zone_ids: list[str], device_ids: list[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """The zones where it sounds, and every zone sounding together with those."""
    footprint = targets.stored(session, zone_ids, device_ids).footprint()
    return frozenset(z.id for z in footprint), frozenset(targets.related_zone_ids(footprint))


def _schedule_entries(
    session: Session, related: set[str], start: datetime, end: datetime
) -> tuple[list[Entry], list[Schedule]]:
    entries: list[Entry] = []
    shown: list[Schedule] = []
    for schedule in planning.plannable(session):
        footprint, reach = _footprint(session, schedule.zone_ids, schedule.device_ids or [])
        if not footprint & related:
            continue
        rows = {
            at: status
            for at, status in session.execute(
                select(Broadcast.occurrence_at, Broadcast.status).where(
                    Broadcast.schedule_id == schedule.id,
                    Broadcast.occurrence_at >= start,
                    Broadcast.occurrence_at < end,
                )
            )
        }
        created = schedule.created_at.replace(microsecond=0)
        airtime = timedelta(seconds=schedule.airtime_s or 0.0)
        runs = [
            at
            for at in programmes.occurrences(planning.rule_of(schedule), start, end)
            if rows.get(at) != BroadcastStatus.CANCELLED.value and (at >= created or at in rows)
        ]
        for at in runs:
            entries.append(
                Entry(
                    at=at,
                    end=at + airtime,
                    title=schedule.bulletin.title,
                    priority=schedule.priority,
                    kind=schedule.kind,
                    zone_ids=tuple(schedule.zone_ids),
                    device_ids=tuple(schedule.device_ids or ()),
                    footprint=footprint,
                    reach=reach,
                    schedule_id=schedule.id,
                    bulletin_id=schedule.bulletin_id,
                )
            )
        if runs:
            shown.append(schedule)
    return entries, shown


def _broadcast_entries(
    session: Session,
    related: set[str],
    start: datetime,
    end: datetime,
    media: audio.MediaStore | None,
) -> list[Entry]:
    """Broadcasts sent at once (no schedule), by the time they were to play."""
    when = func.coalesce(Broadcast.play_at, Broadcast.created_at)
    query = select(Broadcast).where(
        Broadcast.schedule_id.is_(None),
        Broadcast.status.not_in(LEFT_OUT),
        when >= start,
        when < end,
    )
    entries = []
    for row in session.scalars(query):
        footprint, reach = _footprint(session, row.zone_ids, row.device_ids or [])
        if not footprint & related:
            continue
        at = row.play_at or row.created_at
        entries.append(
            Entry(
                at=at,
                end=at + timedelta(seconds=_airtime_s(row, media)),
                title=row.title,
                priority=row.priority,
                kind=row.source,
                zone_ids=tuple(row.zone_ids),
                device_ids=tuple(row.device_ids or ()),
                footprint=footprint,
                reach=reach,
                broadcast_id=row.id,
            )
        )
    return entries


def _airtime_s(row: Broadcast, media: audio.MediaStore | None) -> float:
    if row.duration_s:
        return row.duration_s
    if media is None or not row.media_sha256:
        return 0.0
    try:
        return audio.probe_duration_s(media.path(row.media_sha256)) * row.repeat
    except (audio.AudioError, OSError) as exc:
        _LOGGER.warning("broadcast %s: no length for the calendar: %s", row.id, exc)
        return 0.0


def _mark_conflicts(entries: list[Entry]) -> list[Entry]:
    """Entries (sorted by time) that sound together in a related zone, each naming the others."""
    found: dict[int, list[Conflict]] = {}
    for index, entry in enumerate(entries):
        for later_index in range(index + 1, len(entries)):
            later = entries[later_index]
            if later.at > entry.at and later.at >= entry.end:
                break
            if not entry.overlaps(later) or not entry.reach & later.footprint:
                continue
            found.setdefault(index, []).append(Conflict(later.title, later.at))
            found.setdefault(later_index, []).append(Conflict(entry.title, entry.at))
    return [
        replace(entry, conflicts=tuple(found[index])) if index in found else entry
        for index, entry in enumerate(entries)
    ]


class CalendarDesk:
    """`week_calendar` for the pages (`service.calendar`), in a session of its own."""

    def __init__(self, db: Database, media: audio.MediaStore | None = None) -> None:
        self.db = db
        self.media = media

    def week(
        self,
        user_id: int,
        zone_id: str = "",
        week: date | None = None,
        *,
        now: datetime | None = None,
    ) -> WeekCalendar:
        with self.db.session() as session:
            return week_calendar(session, user_id, zone_id, week, now=now, media=self.media)
