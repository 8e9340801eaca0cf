"""The scheduling desk (lịch phát): an approved bulletin put on the programme, and taken off.

A schedule is a rule (`broadcast.programme.rules`) over zones and receivers. Its media is
rendered when it is made, so its airtime is known and a schedule that would sound at the same
time as another in a related zone is refused before it is saved. The leader plans its runs and
the receivers get them through their manifests; this desk only tells it that the programme
changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast.const import ContentKind, ScheduleKind
from broadcast.desks.bulletins import check_can_cancel_schedule, check_playable
from broadcast.desks.records import ScheduleRecord
from broadcast.errors import N_, Conflict, NotFound, ValidationError
from broadcast.people import accounts, audit, targets, zones
from broadcast.people.permissions import Action
from broadcast.programme import planning, schedules
from broadcast.programme import rules as programmes
from broadcast.sending import broadcasts
from broadcast.sending.outbox import Outbox
from broadcast.settings import Settings
from broadcast.store import sequences
from broadcast.store.db import Database
from broadcast.store.models import Bulletin, Schedule, User, utcnow
from wire import protocol

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduleRequest:
    """What a person asks for; `broadcast.programme.rules.make_rule` says which fields each kind
    needs. Times are local (Asia/Ho_Chi_Minh)."""

    bulletin_id: int
    kind: ScheduleKind | str
    zone_ids: list[str]
    priority: protocol.Priority | str
    repeat: int | str = 1
    run_at: str = ""  # local date and time: ONCE, and the first run of a SERIES
    time_of_day: str = ""  # local HH:MM: DAILY, WEEKDAYS, the lunar kinds
    weekdays: Sequence[int | str] = ()  # WEEKDAYS: 0 = Monday … 6 = Sunday
    cron: str = ""  # CRON: "minute hour day month weekday" (Sunday = 0)
    interval_h: int | str | None = None  # SERIES
    lunar_days: Sequence[int | str] = ()  # LUNAR_MONTHLY, LUNAR_YEARLY: days 1-30 (âm lịch)
    lunar_month: int | str | None = None  # LUNAR_YEARLY: month 1-12 (âm lịch)
    series_key: str = ""  # SERIES: a newer series with the same key replaces this one
    valid_from: str = ""  # local dates, inclusive
    valid_to: str = ""
    device_ids: Sequence[str] = field(default_factory=tuple)


class SchedulingDesk:
    """`service.scheduling`: schedules made, read and cancelled."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        outbox: Outbox,
        programme_changed: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._db = db
        self._outbox = outbox
        self._programme_changed = programme_changed

    def next_run(self, schedule_id: int) -> datetime | None:
        """The schedule's next run from now (UTC, naive), or None when it has no more."""
        with self._db.session() as session:
            schedule = session.get(Schedule, schedule_id)
            return None if schedule is None else _next_run(schedule)

    def check_can_schedule(self, user_id: int) -> None:
        """PermissionDenied unless the user may schedule: the API refuses before pointing at
        the mistakes of what was sent."""
        with self._db.session() as session:
            accounts.require_user(session, user_id, Action.SCHEDULE)

    def active_schedules(self, user_id: int) -> list[ScheduleRecord]:
        """The schedules still planning runs that sound in the user's area (a province's too),
        oldest first (without their next runs)."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.READ_BULLETINS)
            heard = broadcasts.listening_scope(session, user)
            rows = session.scalars(
                select(Schedule)
                .where(Schedule.active.is_(True), Schedule.ended_at.is_(None))
                .order_by(Schedule.id)
            )
            return [_record(row) for row in rows if _sounds_in(heard, row)]

    def get(self, user_id: int, schedule_id: int) -> ScheduleRecord:
        """One schedule with its next run; NotFound if there is none in the user's area."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.READ_BULLETINS)
            schedule = _heard_schedule(session, user, schedule_id)
            return _record(schedule, _next_run(schedule))

    def schedule(self, user_id: int, request: ScheduleRequest, *, forwarded: bool = False) -> int:
        """Validate, render, check for overlaps, save; a series replaces the older one of its
        key. Receivers get the runs through their manifests. `forwarded`: a province bulletin
        placed from the commune's inbox (`source_bulletins` checked it was sent down to the
        user's commune), which is not the commune's own."""
        now = utcnow()
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SCHEDULE)
            bulletin = session.get(Bulletin, request.bulletin_id)
            if bulletin is None or not (
                forwarded or zones.in_scope(session, user, bulletin.zone_id)
            ):
                raise ValidationError(
                    "bulletin",
                    N_("không có bản tin %(id)s"),
                    "unknown_bulletin",
                    id=request.bulletin_id,
                )
            check_playable(bulletin)
            chosen = targets.resolve(session, request.zone_ids, request.device_ids)
            targets.check_can_target(session, user, chosen)
            voice = zones.voice_for(session, chosen.zone_ids, chosen.device_ids)
            priority = broadcasts.clean_priority(request.priority)
            relay = bulletin.kind == ContentKind.RELAY
            repeat = 1 if relay else broadcasts.clean_repeat(request.repeat)
            rule = programmes.make_rule(
                request.kind,
                now=now,
                run_at=request.run_at,
                time_of_day=request.time_of_day,
                weekdays=request.weekdays,
                cron=request.cron,
                interval_h=request.interval_h,
                valid_from=request.valid_from,
                valid_to=request.valid_to,
                lunar_days=request.lunar_days,
                lunar_month=request.lunar_month,
            )
            series_key = (
                programmes.clean_series_key(request.series_key)
                if rule.kind is ScheduleKind.SERIES
                else None
            )
            text, recording = bulletin.text, bulletin.recording_sha256
            relay_seconds = bulletin.duration_s or 0.0
        if relay:
            sha256, engine, airtime = None, ContentKind.RELAY.value, relay_seconds
        else:
            sha256, engine, airtime = self._outbox.render_for_schedule(
                text, recording, repeat, voice
            )
        with self._db.session() as session:
            # one schedule at a time, across processes: the overlap check and the insert
            # must not interleave with another process's
            sequences.hold(session, sequences.SCHEDULE_LOCK)
            chosen = targets.resolve(session, request.zone_ids, request.device_ids)
            span = schedules.check_span(rule, now, self._settings.overlap_window_days)
            runs = programmes.occurrences(rule, *span)
            schedules.check_spacing(runs, airtime)
            clash = schedules.find_clash(
                session,
                runs=runs,
                airtime_s=airtime,
                chosen=chosen,
                span=span,
                replacing_series=series_key,
            )
            if clash is not None:
                raise schedules.clash_conflict(clash)
            schedule = Schedule(
                bulletin_id=request.bulletin_id,
                kind=rule.kind.value,
                run_at=rule.run_at,
                time_of_day=rule.time_of_day or None,
                weekdays=list(rule.weekdays) or None,
                cron=rule.cron or None,
                interval_h=rule.interval_h or None,
                lunar_days=list(rule.lunar_days) or None,
                lunar_month=rule.lunar_month or None,
                series_key=series_key,
                valid_from=rule.valid_from,
                valid_to=rule.valid_to,
                zone_ids=chosen.zone_ids,
                device_ids=chosen.device_ids,
                priority=priority.value,
                repeat=repeat,
                media_sha256=sha256,
                tts_engine=engine,
                airtime_s=airtime,
                created_by_id=user_id,
                created_at=now,
            )
            session.add(schedule)
            session.flush()
            schedule_id = schedule.id
            audit.record(
                session,
                session.get(User, user_id),
                audit.Action.SCHEDULE_CREATE,
                f"schedule:{schedule_id}",
                {
                    "bulletin": request.bulletin_id,
                    "kind": rule.kind.value,
                    "zones": chosen.zone_ids,
                    "devices": chosen.device_ids,
                    "priority": priority.value,
                },
            )
            if series_key is not None:
                for older in schedules.series_to_replace(session, series_key):
                    if older.id != schedule_id:
                        planning.end_schedule(session, older, now, replaced_by=schedule_id)
                        _LOGGER.info("series %r: schedule %s replaces %s", series_key,
                                     schedule_id, older.id)  # fmt: skip
        _LOGGER.info("schedule %s added (%s)", schedule_id, rule.kind.value)
        self._programme_changed()
        return schedule_id

    def cancel(self, user_id: int, schedule_id: int) -> None:
        """No more runs: waiting ones are cancelled and leave the receivers' manifests."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SCHEDULE)
            schedule = _heard_schedule(session, user, schedule_id)
            check_can_cancel_schedule(session, user, schedule)
            if schedule.ended_at is not None:  # keep when and why it ended (a newer series)
                raise Conflict(
                    "schedule",
                    N_("lịch phát này đã kết thúc hoặc đã bị hủy trước đó"),
                    "ended",
                )
            planning.end_schedule(session, schedule, utcnow())
            audit.record(session, user, audit.Action.SCHEDULE_CANCEL, f"schedule:{schedule_id}")
        _LOGGER.info("schedule %s cancelled", schedule_id)
        self._programme_changed()


def _sounds_in(heard: broadcasts.ListeningScope | None, schedule: Schedule) -> bool:
    return broadcasts.sounds_in(heard, schedule.zone_ids, schedule.device_ids or [])


def _heard_schedule(session: Session, user: User, schedule_id: int) -> Schedule:
    """The schedule if it sounds in `user`'s area; else NotFound, as if there were none."""
    schedule = session.get(Schedule, schedule_id)
    if schedule is None or not _sounds_in(broadcasts.listening_scope(session, user), schedule):
        raise NotFound(N_("không có lịch phát %(id)s"), "not_found", id=schedule_id)
    return schedule


def _next_run(schedule: Schedule) -> datetime | None:
    if not _is_active(schedule):
        return None
    return programmes.next_occurrence(planning.rule_of(schedule), utcnow())


def _is_active(schedule: Schedule) -> bool:
    return schedule.active and schedule.ended_at is None


def _record(schedule: Schedule, next_run: datetime | None = None) -> ScheduleRecord:
    return ScheduleRecord.of(schedule, next_run)
