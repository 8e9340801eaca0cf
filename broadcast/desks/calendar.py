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

A province's week would be every commune's (hundreds of entries a day): it lists what sounds
province-wide (targets the province or above) and, per commune, how many runs sound there and
how many of them clash; the commune's own week, a click away, has the details.

Every account sees the zones of its scope (its zone and below; an installation-wide account
every zone): a commune's week shows what its province sends there, never another commune's.
A schedule is cancelled here only by someone who could have made it (every target theirs).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, selectinload

import audio
from broadcast import clock
from broadcast.const import BroadcastStatus, ZoneKind
from broadcast.desks.bulletins import cancellable_schedules
from broadcast.desks.records import ScheduleRecord
from broadcast.errors import N_, NotFound, PermissionDenied, ValidationError
from broadcast.people import accounts, permissions, zones
from broadcast.people.permissions import Action
from broadcast.programme import lunar, planning
from broadcast.programme import rules as programmes
from broadcast.programme.lunar import LunarDay
from broadcast.settings import Secrets
from broadcast.store.db import Database
from broadcast.store.json_lists import json_list_has_any
from broadcast.store.models import Broadcast, Device, Schedule, User, utcnow

_LOGGER = logging.getLogger(__name__)

LEFT_OUT = (BroadcastStatus.FAILED.value, BroadcastStatus.CANCELLED.value)
FEED_WEEKS = 8  # what a phone calendar subscribed to the feed is shown ahead
MAX_FEED_WEEKS = 26


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
    lunar: LunarDay | None = None  # the same day in the Vietnamese lunar calendar


@dataclass(frozen=True)
class ZoneChoice:
    id: str
    name: str
    depth: int = 0  # below the first zone listed (a picker indents villages)


@dataclass(frozen=True)
class CommuneWeek:
    """A province's week, one commune: its runs (its own and its villages') and clashes."""

    id: str
    name: str
    runs: int
    conflicts: int


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
    # a province's week: the entries are what sounds province-wide, the rest counted here
    communes: list[CommuneWeek] = field(default_factory=list)
    user_id: int = 0
    feed_token: str = ""  # the secret of the user's calendar feed link ("" without one)

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

    A fixed number of queries at any size of tree: the zones are read once (`ZoneTree`), and
    only the schedules and broadcasts that sound in the zone are read, filtered in SQL.
    A province's week lists what sounds province-wide and counts the rest per commune.

    `media`, when given, measures announcements' recorded length; without it they count as
    instants."""
    user = accounts.require_user(session, user_id, Action.VIEW)
    tree = zones.ZoneTree.load(session)
    zone = _chosen_zone(tree, user, zone_id)
    now = now or utcnow()
    monday = monday_of(week or programmes.local_today(now))
    start = programmes.local_midnight(monday)
    end = programmes.local_midnight(monday + timedelta(days=7))
    above = [z.id for z in tree.ancestors_and_self(zone.id)]
    schedules = list(
        session.scalars(
            select(Schedule)
            .options(selectinload(Schedule.bulletin))
            .where(
                Schedule.active.is_(True),
                Schedule.ended_at.is_(None),
                _sounding_in(Schedule.zone_ids, Schedule.device_ids, zone.id, above),
            )
            .order_by(Schedule.id)
        )
    )
    when = func.coalesce(Broadcast.play_at, Broadcast.created_at)
    sent = list(
        session.scalars(
            select(Broadcast).where(
                Broadcast.schedule_id.is_(None),
                Broadcast.status.not_in(LEFT_OUT),
                when >= start,
                when < end,
                _sounding_in(Broadcast.zone_ids, Broadcast.device_ids, zone.id, above),
            )
        )
    )
    places = _Places(session, tree, [*schedules, *sent])
    related = tree.related_ids([zone.id])
    entries, shown = _schedule_entries(session, places, related, schedules, start, end)
    entries += _broadcast_entries(places, related, sent, media)
    entries = sorted(entries, key=lambda e: (e.at, e.title))
    communes: list[CommuneWeek] = []
    if zone.kind == ZoneKind.PROVINCE.value:  # a province: its own entries, then per commune
        communes = _per_commune(tree, zone, set(above), entries)
        entries = [entry for entry in entries if entry.footprint & set(above)]
        shown = [s for s in shown if any(e.schedule_id == s.id for e in entries)]
    entries = _mark_conflicts(entries)
    days = [_day(monday + timedelta(days=offset)) for offset in range(7)]
    for entry in entries:
        local = programmes.local_today(entry.at)
        days[(local - monday).days].entries.append(entry)
    named = {z for entry in entries for z in entry.zone_ids}
    named |= {z for schedule in shown for z in schedule.zone_ids}
    choices = _zone_choices(tree, user, zone)
    return WeekCalendar(
        zone=ZoneChoice(zone.id, zone.name),
        zones=choices,
        zone_names={  # the entries' zones and the picker's
            **{z: tree.by_id[z].name for z in named if z in tree.by_id},
            **{choice.id: choice.name for choice in choices},
        },
        start=monday,
        days=days,
        schedules=[ScheduleRecord.of(schedule) for schedule in shown],
        can_cancel=permissions.allowed(user.role, Action.SCHEDULE),
        can_open_bulletins=permissions.allowed(user.role, Action.READ_BULLETINS),
        cancellable=cancellable_schedules(session, user, shown),
        communes=communes,
    )


def _day(local: date) -> Day:
    """An empty day with its lunar date (none past the lunar calendar's last year)."""
    try:
        return Day(local, [], lunar.lunar_day(local))
    except ValueError:
        return Day(local, [])


def _sounding_in(
    zone_ids: Any, device_ids: Any, zone_id: str, above: list[str]
) -> ColumnElement[bool]:
    """SQL: targets (JSON lists of zones and named receivers) that sound together with the
    zone `zone_id`: a target is the zone, one above it (`above`) or one below it, or a receiver
    in one of those. Subqueries, not lists of ids (`store.json_lists`)."""
    below = zones.subtree_select([zone_id])
    devices = select(Device.id).where(or_(Device.zone_id.in_(above), Device.zone_id.in_(below)))
    return or_(
        json_list_has_any(zone_ids, above),
        json_list_has_any(zone_ids, below),
        json_list_has_any(device_ids, devices),
    )


_Footprint = tuple[frozenset[str], frozenset[str]]


class _Places:
    """Where the schedules and broadcasts read sound, from the tree in memory and one query for
    the zones of the receivers they name."""

    def __init__(
        self, session: Session, tree: zones.ZoneTree, rows: list[Schedule | Broadcast]
    ) -> None:
        self.tree = tree
        named = sorted({d for row in rows for d in row.device_ids or []})
        self.device_zones = zones.device_zones(session, named)
        # a week's runs share a few target lists; a province-wide one relates to every zone
        self._footprints: dict[tuple[tuple[str, ...], tuple[str, ...]], _Footprint] = {}

    def footprint(self, zone_ids: list[str], device_ids: list[str]) -> _Footprint:
        """The zones where it sounds, and every zone sounding together with those."""
        key = (tuple(zone_ids), tuple(device_ids))
        if key not in self._footprints:
            found = {z for z in zone_ids if z in self.tree.by_id}
            found |= {self.device_zones[d] for d in device_ids if d in self.device_zones}
            self._footprints[key] = (frozenset(found), frozenset(self.tree.related_ids(found)))
        return self._footprints[key]


def _chosen_zone(tree: zones.ZoneTree, user: User, zone_id: str) -> zones.TreeZone:
    """The zone asked for, else the user's own, else (installation-wide) the top of the tree:
    the province (everything planned in it), or a single-commune installation's commune."""
    if zone_id:
        zone = tree.by_id.get(zone_id)
        if zone is None:
            raise NotFound(N_("không có khu vực “%(id)s”"), "not_found", id=zone_id)
    elif user.zone_id is not None and user.zone_id in tree.by_id:
        zone = tree.by_id[user.zone_id]
    else:
        top = tree.children(None)
        if not top:
            raise NotFound(N_("chưa có xã nào"), "no_commune")
        zone = top[0]
    if user.zone_id is not None and zone.id not in tree.subtree_ids([user.zone_id]):
        raise PermissionDenied(
            N_("người dùng “%(user)s” không được xem khu vực “%(zone)s”"),
            "zone_out_of_reach",
            user=user.username,
            zone=zone.id,
        )
    return zone


def _zone_choices(tree: zones.ZoneTree, user: User, zone: zones.TreeZone) -> list[ZoneChoice]:
    """The picker, in tree order: the top of the user's scope and the zones right below it, and
    the zones below each zone on the way to the chosen one. A commune's account sees its commune
    and villages; a province's its communes, and a commune's villages once one is chosen (not
    hundreds of villages at once)."""
    top = tree.top_of(user)
    opened = {z.id for z in tree.ancestors_and_self(zone.id)} | {z.id for z in top}
    return [ZoneChoice(z.id, z.name, depth) for z, depth in tree.walk(top, opened)]


def _per_commune(
    tree: zones.ZoneTree, province: zones.TreeZone, above: set[str], entries: list[Entry]
) -> list[CommuneWeek]:
    """How many runs of the week sound in each zone right below the province (its communes)
    other than the province-wide ones (those targeting `above`), and how many of them clash,
    with one another or with a province-wide one. Runs in two communes never clash, so each
    commune is checked alone (the province at once would compare every pair at 06:00)."""
    wide = [entry for entry in entries if entry.footprint & above]
    own: dict[str, list[Entry]] = {}
    for entry in entries:
        if entry.footprint & above:
            continue
        below = {_child_towards(tree, province.id, zone_id) for zone_id in entry.footprint}
        for commune in (c for c in below if c is not None):
            own.setdefault(commune, []).append(entry)
    rows = []
    for commune in tree.children(province.id):
        mine = own.get(commune.id, [])
        marked = _mark_conflicts(sorted(wide + mine, key=lambda e: (e.at, e.title)))
        clashes = sum(1 for e in marked if e.conflicts and not e.footprint & above)
        rows.append(CommuneWeek(commune.id, commune.name, len(mine), clashes))
    return rows


def _child_towards(tree: zones.ZoneTree, top_id: str, zone_id: str) -> str | None:
    """The zone right below `top_id` on the way down to `zone_id` (None: not below it)."""
    chain = [z.id for z in tree.ancestors_and_self(zone_id)]
    if top_id not in chain[1:]:
        return None
    return chain[chain.index(top_id) - 1]


def _schedule_entries(
    session: Session,
    places: _Places,
    related: set[str],
    schedules: list[Schedule],
    start: datetime,
    end: datetime,
) -> tuple[list[Entry], list[Schedule]]:
    entries: list[Entry] = []
    shown: list[Schedule] = []
    statuses: dict[tuple[int, datetime], str] = {}
    if schedules:  # the week's rows of every schedule read, in one query
        rows = session.execute(
            select(Broadcast.schedule_id, Broadcast.occurrence_at, Broadcast.status).where(
                Broadcast.schedule_id.in_([s.id for s in schedules]),
                Broadcast.occurrence_at >= start,
                Broadcast.occurrence_at < end,
            )
        )
        statuses = {(schedule_id, at): status for schedule_id, at, status in rows}
    # a province's communes share a few rules ("daily at 06:00"): each is expanded once
    expanded: dict[programmes.Rule, list[datetime]] = {}
    for schedule in schedules:
        footprint, reach = places.footprint(schedule.zone_ids, schedule.device_ids or [])
        if not footprint & related:
            continue
        created = schedule.created_at.replace(microsecond=0)
        airtime = timedelta(seconds=schedule.airtime_s or 0.0)
        rule = planning.rule_of(schedule)
        if rule not in expanded:
            expanded[rule] = programmes.occurrences(rule, start, end)
        runs = [
            at
            for at in expanded[rule]
            if statuses.get((schedule.id, at)) != BroadcastStatus.CANCELLED.value
            and (at >= created or (schedule.id, at) in statuses)
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
    places: _Places,
    related: set[str],
    sent: list[Broadcast],
    media: audio.MediaStore | None,
) -> list[Entry]:
    """Broadcasts sent at once (no schedule), by the time they were to play."""
    entries = []
    for row in sent:
        footprint, reach = places.footprint(row.zone_ids, row.device_ids or [])
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
        return (media.duration_s(row.media_sha256) or 0.0) * row.repeat
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


@dataclass(frozen=True)
class Feed:
    """A calendar feed: the account's zone's entries over the weeks asked for, from this week's
    Monday (an entry's `lunar`: its local day's lunar date)."""

    zone: ZoneChoice
    locale: str  # the account's language ("" for the default)
    entries: list[tuple[Entry, LunarDay | None]]
    zone_names: dict[str, str]


def feed_token(key: str, user: User) -> str:
    """The secret of the account's calendar feed link: an HMAC of the account and its
    `calendar_feed_epoch` under the installation's key, so the server keeps no copy of it and
    raising the epoch revokes the old link (128 bits, hex)."""
    message = f"calendar-feed:{user.id}:{user.calendar_feed_epoch}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:32]


class CalendarDesk:
    """`week_calendar` for the pages (`service.calendar`), in a session of its own, and the
    calendar feed a phone subscribes to (an iCalendar link with a secret per account)."""

    def __init__(
        self, db: Database, media: audio.MediaStore | None = None, secrets: Secrets | None = None
    ) -> None:
        self.db = db
        self.media = media
        self.secrets = secrets

    def _feed_key(self) -> str:
        if self.secrets is None:
            raise NotFound(N_("không có lịch đăng ký"), "no_feed")
        return self.secrets.calendar_feed_key

    def feed_token(self, user_id: int) -> str:
        """The secret of the user's feed link (one who may see the calendar)."""
        key = self._feed_key()
        with self.db.session() as session:
            return feed_token(key, accounts.require_user(session, user_id, Action.VIEW))

    def renew_feed(self, user_id: int) -> str:
        """A new feed link for the user: the old one stops answering. Returns the new secret."""
        key = self._feed_key()
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.VIEW)
            user.calendar_feed_epoch += 1
            session.flush()
            _LOGGER.info("user %s: calendar feed link renewed", user_id)
            return feed_token(key, user)

    def feed(
        self,
        user_id: int,
        token: str,
        weeks: int = FEED_WEEKS,
        *,
        now: datetime | None = None,
    ) -> Feed:
        """The user's feed, if `token` is their link's secret (else NotFound, the same for an
        unknown, inactive or revoked account): what sounds in their zone, as their week
        calendar shows it, over `weeks` weeks from this one."""
        key = self._feed_key()
        weeks = max(1, min(weeks, MAX_FEED_WEEKS))
        now = now or utcnow()
        with self.db.session() as session:
            user = session.get(User, user_id)
            if (
                user is None
                or not user.active
                or not hmac.compare_digest(feed_token(key, user), str(token))
            ):
                raise NotFound(N_("không có lịch đăng ký này"), "not_found")
            monday = monday_of(programmes.local_today(now))
            entries: list[tuple[Entry, LunarDay | None]] = []
            names: dict[str, str] = {}
            zone = None
            for offset in range(weeks):
                week = week_calendar(
                    session,
                    user_id,
                    week=monday + timedelta(days=7 * offset),
                    now=now,
                    media=self.media,
                )
                zone = week.zone
                names.update(week.zone_names)
                entries += [(entry, day.lunar) for day in week.days for entry in day.entries]
            assert zone is not None
            return Feed(zone=zone, locale=user.locale or "", entries=entries, zone_names=names)

    def week(
        self,
        user_id: int,
        zone_id: str = "",
        week: date | None = None,
        *,
        now: datetime | None = None,
    ) -> WeekCalendar:
        with self.db.session() as session:
            found = week_calendar(session, user_id, zone_id, week, now=now, media=self.media)
            user = session.get(User, user_id)  # read already: from the session's identity map
            if self.secrets is None or user is None:
                return found
            token = feed_token(self.secrets.calendar_feed_key, user)
            return replace(found, user_id=user_id, feed_token=token)
