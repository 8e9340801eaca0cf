"""Planning: every run of a schedule becomes a row of the broadcast log before it is due.

When a run enters the manifest horizon (48 h) it gets its own `Broadcast` (status `scheduled`,
unique per schedule and run time, one queued delivery per target receiver), so the receivers'
manifests can name it and their answer-back fills its record. At its time the scheduler marks
it due (`dispatched`). A run the server was not running for is recorded as `missed`, with a
warning in the log, never dropped: within the grace period it still fires once; after it, a row
that was already planned (and may have played from the receivers' manifests) becomes `missed`,
and a run that never got a row gets one, `missed`, with failed deliveries.

`Schedule.planned_until` remembers how far a schedule has been planned, so each pass only looks
at new time and a long outage is caught up in bounded steps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from broadcast import clock
from broadcast.const import BroadcastStatus, ContentKind, DeliveryState, ScheduleKind
from broadcast.people import targets
from broadcast.programme import rules as programmes
from broadcast.sending import broadcasts
from broadcast.store.models import Broadcast, Bulletin, Delivery, Schedule
from wire.protocol import Priority

_LOGGER = logging.getLogger(__name__)

MAX_RUNS_PER_PASS = 500  # per schedule; a longer outage is caught up over several passes
NOT_RUNNING = "the server was not running at this time"


@dataclass(frozen=True)
class PlanResult:
    created: list[int]  # new rows
    missed: list[int]  # rows recorded as missed in this pass
    due: list[tuple[int, datetime]]  # scheduled rows the scheduler must fire: (id, run time)


def rule_of(schedule: Schedule) -> programmes.Rule:
    return programmes.rule_of(
        schedule.kind,
        schedule.run_at,
        schedule.time_of_day,
        schedule.weekdays,
        schedule.cron,
        schedule.interval_h,
        schedule.valid_from,
        schedule.valid_to,
        schedule.lunar_days,
        schedule.lunar_month,
    )


def item_id(schedule_id: int, at: datetime) -> str:
    """A run's id in the manifests: `s12-1764140400` (schedule, epoch seconds of the run)."""
    return f"s{schedule_id}-{int(at.replace(tzinfo=UTC).timestamp())}"


def item_validity(schedule: Schedule, item_valid_s: float) -> timedelta:
    """How long after its time a run may still start: a series item until the next one."""
    if schedule.kind == ScheduleKind.SERIES and schedule.interval_h:
        return timedelta(hours=schedule.interval_h)
    return timedelta(seconds=item_valid_s)


def plannable(session: Session) -> list[Schedule]:
    """Schedules still producing runs."""
    query = select(Schedule).where(Schedule.active.is_(True), Schedule.ended_at.is_(None))
    return list(session.scalars(query.order_by(Schedule.id)))


def plan(
    session: Session,
    *,
    now: datetime,
    horizon_s: float,
    grace_s: float,
    item_valid_s: float,
) -> PlanResult:
    """Create the rows of every run up to now + horizon; record what was missed."""
    horizon_end = now + timedelta(seconds=horizon_s)
    grace = timedelta(seconds=grace_s)
    created: list[int] = []
    missed: list[int] = []
    for schedule in plannable(session):
        if schedule.media_sha256 is None and schedule.bulletin.kind != ContentKind.RELAY:
            _LOGGER.warning("schedule %s has no rendered media yet: not planned", schedule.id)
            continue
        rule = rule_of(schedule)
        start = schedule.planned_until or schedule.created_at
        runs = programmes.occurrences(rule, start, horizon_end, limit=MAX_RUNS_PER_PASS)
        chosen = targets.stored(session, schedule.zone_ids, schedule.device_ids or [])
        for at in runs:
            row = _materialize(session, schedule, chosen, at, now - grace, item_valid_s)
            if row is None:
                continue
            created.append(row.id)
            if row.status == BroadcastStatus.MISSED.value:
                missed.append(row.id)
                _log_missed(row, grace_s)
        caught_up = len(runs) < MAX_RUNS_PER_PASS
        schedule.planned_until = horizon_end if caught_up else runs[-1] + timedelta(microseconds=1)
    for row in _overdue(session, now - grace):
        if broadcasts.mark_missed(row, f"{NOT_RUNNING} (not fired within {grace_s:.0f} s)"):
            missed.append(row.id)
            _log_missed(row, grace_s)
    _add_new_receivers(session)
    session.flush()
    due = [
        (row.id, row.occurrence_at)
        for row in session.scalars(
            select(Broadcast).where(
                Broadcast.status == BroadcastStatus.SCHEDULED.value,
                Broadcast.occurrence_at.is_not(None),
            )
        )
        if row.occurrence_at is not None
    ]
    return PlanResult(created=created, missed=missed, due=due)


def _materialize(
    session: Session,
    schedule: Schedule,
    chosen: targets.Targets,
    at: datetime,
    missed_before: datetime,
    item_valid_s: float,
) -> Broadcast | None:
    exists = session.scalar(
        select(Broadcast.id).where(
            Broadcast.schedule_id == schedule.id, Broadcast.occurrence_at == at
        )
    )
    if exists is not None:
        return None
    bulletin = schedule.bulletin
    is_missed = at < missed_before
    relay = bulletin.kind == ContentKind.RELAY
    return broadcasts.create_broadcast(
        session,
        text=bulletin.text,
        zone_list=chosen.zones,
        devices=chosen.devices,
        priority=Priority(schedule.priority),
        repeat=schedule.repeat,
        source="schedule",
        title=bulletin.title,
        schedule_id=schedule.id,
        recording_sha256=bulletin.recording_sha256,
        status=BroadcastStatus.MISSED if is_missed else BroadcastStatus.SCHEDULED,
        delivery_state=DeliveryState.FAILED if is_missed else DeliveryState.QUEUED,
        delivery_detail=f"not dispatched: {NOT_RUNNING}" if is_missed else "",
        error=NOT_RUNNING if is_missed else "",
        occurrence_at=at,
        play_at=at,
        valid_until=at + item_validity(schedule, item_valid_s),
        item_id=item_id(schedule.id, at),
        content=ContentKind(bulletin.kind).content_type.value,
        relay_url=bulletin.relay_url if relay else None,
        duration_s=bulletin.duration_s if relay else None,
        media_sha256=None if relay else schedule.media_sha256,
        tts_engine=schedule.tts_engine or "",
    )


def _overdue(session: Session, before: datetime) -> list[Broadcast]:
    query = select(Broadcast).where(
        Broadcast.status == BroadcastStatus.SCHEDULED.value,
        Broadcast.occurrence_at.is_not(None),
        Broadcast.occurrence_at < before,
    )
    return list(session.scalars(query))


def _log_missed(row: Broadcast, grace_s: float) -> None:
    _LOGGER.warning(
        "missed run: broadcast %s of schedule %s at %s (local) was not fired within the %.0f s"
        " grace period; recorded as missed",
        row.id,
        row.schedule_id,
        clock.format_local(row.occurrence_at),
        grace_s,
    )


def _add_new_receivers(session: Session) -> None:
    """A receiver registered after a run was planned still gets that run (and its manifest)."""
    waiting = session.scalars(
        select(Broadcast).where(
            Broadcast.status == BroadcastStatus.SCHEDULED.value,
            Broadcast.occurrence_at.is_not(None),
        )
    )
    for row in waiting:
        chosen = targets.stored(session, row.zone_ids, row.device_ids or [])
        have = {delivery.device_id for delivery in row.deliveries}
        for device_id in chosen.receiver_ids():
            if device_id not in have:
                session.add(
                    Delivery(broadcast_id=row.id, device_id=device_id, state=DeliveryState.QUEUED)
                )


def end_schedule(
    session: Session, schedule: Schedule, now: datetime, replaced_by: int | None = None
) -> list[int]:
    """Cancel a schedule (or replace a series): it plans nothing more, its waiting runs are
    cancelled and all its items leave the manifests. Returns the cancelled rows' ids."""
    schedule.active = False
    schedule.ended_at = now
    schedule.replaced_by_id = replaced_by
    waiting = session.scalars(
        select(Broadcast).where(
            Broadcast.schedule_id == schedule.id,
            Broadcast.status == BroadcastStatus.SCHEDULED.value,
        )
    )
    cancelled = []
    for row in waiting:
        broadcasts.mark_cancelled(row)
        cancelled.append(row.id)
    return cancelled


@dataclass(frozen=True)
class ProgrammeSlot:
    """One run of a schedule on a given day: when (UTC, naive), its log row if planned."""

    at: datetime
    schedule: Schedule
    broadcast: Broadcast | None
    done: bool


def todays_programme(
    session: Session, now: datetime, scope: broadcasts.ListeningScope | None = None
) -> list[ProgrammeSlot]:
    """The runs on the local calendar day of `now`, in order, with their log rows; with a
    `scope` (`broadcasts.listening_scope`), only the runs that sound on its loudspeakers."""
    day_start = programmes.local_midnight(programmes.local_today(now))
    day_end = day_start + timedelta(days=1)
    # each slot shows its bulletin's title: loaded with the schedules (the title only, not
    # every bulletin's text), not one query each
    query = select(Schedule).options(joinedload(Schedule.bulletin).load_only(Bulletin.title))
    heard = [
        schedule
        for schedule in session.scalars(query.where(Schedule.ended_at.is_(None)))
        if broadcasts.sounds_in(scope, schedule.zone_ids, schedule.device_ids or [])
    ]
    rows: dict[tuple[int | None, datetime | None], Broadcast] = {}
    if heard:  # the log rows of those schedules only, not every commune's of the day
        rows = {
            (row.schedule_id, row.occurrence_at): row
            for row in session.scalars(
                select(Broadcast).where(
                    Broadcast.occurrence_at >= day_start,
                    Broadcast.occurrence_at < day_end,
                    Broadcast.schedule_id.in_([schedule.id for schedule in heard]),
                )
            )
        }
    slots = []
    for schedule in heard:
        for at in programmes.occurrences(rule_of(schedule), day_start, day_end):
            if at < schedule.created_at.replace(microsecond=0) and (schedule.id, at) not in rows:
                continue  # before the schedule existed
            row = rows.get((schedule.id, at))
            slots.append(ProgrammeSlot(at=at, schedule=schedule, broadcast=row, done=at <= now))
    return sorted(slots, key=lambda slot: (slot.at, slot.schedule.id))
