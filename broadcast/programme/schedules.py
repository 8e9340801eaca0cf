"""Making a schedule: its runs must not sound over another schedule's in the same place.

Two schedules meet when their footprints are related (the same zone, or one an ancestor of the
other; a device counts as its zone) and a run of one starts before a run of the other ends
(duration = the rendered programme × repeat, or the relay's length). The new schedule's runs are
checked over its validity window, or the next two weeks when it has none, against every active
schedule; the first clash is refused with a message naming the other bulletin, the local date
and time and the zone, in Vietnamese since the officer reads it in the form.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast import clock
from broadcast.const import BroadcastStatus, ScheduleKind
from broadcast.errors import N_, Conflict, ValidationError
from broadcast.people import targets, zones
from broadcast.programme import planning
from broadcast.programme import rules as programmes
from broadcast.store.models import Broadcast, Schedule, Zone

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clash:
    mine: datetime
    theirs: datetime
    other: Schedule
    zone: Zone


def check_span(rule: programmes.Rule, now: datetime, window_days: int) -> tuple[datetime, datetime]:
    """The span a new schedule is checked over: its validity window, or `window_days` from its
    start when it has no end (a one-off: its run)."""
    if rule.kind is ScheduleKind.ONCE and rule.run_at is not None:
        return now, rule.run_at + timedelta(microseconds=1)
    start = max(now, rule.window_start or now)
    return start, rule.window_end or start + timedelta(days=window_days)


def check_spacing(runs: list[datetime], airtime_s: float) -> None:
    """A schedule must not sound over itself, nor run more often than every 15 minutes."""
    close = programmes.too_close(runs, max(programmes.MIN_GAP_S, airtime_s))
    if close is not None:
        raise ValidationError(
            "time",
            N_(
                "hai lần phát liền nhau quá gần (%(first)s và %(second)s): mỗi lần phát dài"
                " %(minutes)s phút, cách nhau ít nhất %(gap)s phút"
            ),
            "too_close",
            first=clock.format_local(close[0]),
            second=clock.format_local(close[1]),
            minutes=f"{airtime_s / 60:.0f}",
            gap=programmes.MIN_GAP_S // 60,
        )


def find_clash(
    session: Session,
    *,
    runs: list[datetime],
    airtime_s: float,
    chosen: targets.Targets,
    span: tuple[datetime, datetime],
    replacing_series: str | None = None,
) -> Clash | None:
    """The earliest run of another active schedule sounding with one of `runs` in a related
    zone (a series being replaced does not count)."""
    mine_footprint = chosen.footprint()
    related = targets.related_zone_ids(mine_footprint)
    best: Clash | None = None
    for other in planning.plannable(session):
        if replacing_series and other.series_key == replacing_series:
            continue
        other_targets = targets.stored(session, other.zone_ids, other.device_ids or [])
        theirs_footprint = other_targets.footprint()
        meeting = [zone for zone in theirs_footprint if zone.id in related]
        if not meeting:
            continue
        other_airtime = other.airtime_s or 0.0
        start, until = span
        theirs = _live_runs(session, other, start - timedelta(seconds=other_airtime), until)
        hit = programmes.first_overlap(runs, airtime_s, theirs, other_airtime)
        if hit is not None and (best is None or hit[0] < best.mine):
            zone = _where(mine_footprint, meeting)
            best = Clash(mine=hit[0], theirs=hit[1], other=other, zone=zone)
    return best


def _live_runs(
    session: Session, schedule: Schedule, start: datetime, end: datetime
) -> list[datetime]:
    """The schedule's runs in [start, end) that were not cancelled one by one."""
    cancelled = set(
        session.scalars(
            select(Broadcast.occurrence_at).where(
                Broadcast.schedule_id == schedule.id,
                Broadcast.status == BroadcastStatus.CANCELLED.value,
            )
        )
    )
    return [
        at
        for at in programmes.occurrences(planning.rule_of(schedule), start, end)
        if at not in cancelled
    ]


def _where(mine: list[Zone], meeting: list[Zone]) -> Zone:
    """The most precise zone where the two sound together (a village rather than the commune)."""
    for theirs in meeting:
        for own in mine:
            if own is theirs or own in zones.ancestors_and_self(theirs):
                return theirs
            if theirs in zones.ancestors_and_self(own):
                return own
    return meeting[0]


def clash_conflict(clash: Clash) -> Conflict:
    """The refusal of a schedule that would play over another (code `overlap`, on `time`)."""
    return Conflict(
        "time",
        N_(
            "Trùng giờ: lần phát lúc %(time)s ngày %(date)s sẽ phát đè lên bản tin “%(title)s”"
            " (phát lúc %(other_time)s ngày %(other_date)s) tại %(zone)s (lịch số"
            " %(schedule)s). Chọn giờ khác hoặc hủy lịch kia."
        ),
        "overlap",
        time=clock.format_local(clash.mine, "%H:%M"),
        date=clock.format_local(clash.mine, "%d/%m/%Y"),
        title=clash.other.bulletin.title,
        other_time=clock.format_local(clash.theirs, "%H:%M"),
        other_date=clock.format_local(clash.theirs, "%d/%m/%Y"),
        zone=clash.zone.name,
        schedule=clash.other.id,
    )


def series_to_replace(session: Session, key: str) -> list[Schedule]:
    query = select(Schedule).where(
        Schedule.series_key == key, Schedule.active.is_(True), Schedule.ended_at.is_(None)
    )
    return list(session.scalars(query))
