"""Schedules (lịch phát): bulletins fired by APScheduler 3.11 from a job store in the database.

Jobs are stored by reference to `fire_schedule(schedule_id)`, so they survive a restart: the
scheduler reloads them from the database and runs what is due, coalescing missed runs into one
within a grace period instead of dropping them silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import Engine

from broadcast.const import LOCAL_TZ, ScheduleKind
from broadcast.models import Schedule

_LOGGER = logging.getLogger(__name__)

MISFIRE_GRACE_S = 15 * 60
_fire_callback: Callable[[int], None] | None = None


@dataclass(frozen=True)
class ProgrammeSlot:
    """One run of a schedule on a given day: when (UTC, naive) and whether it is past."""

    at: datetime
    schedule: Schedule
    done: bool


def todays_programme(schedules: Iterable[Schedule], now: datetime) -> list[ProgrammeSlot]:
    """The active schedules' runs on the local calendar day of `now` (UTC, naive), in order."""
    today = now.replace(tzinfo=UTC).astimezone(LOCAL_TZ).date()
    slots = []
    for schedule in schedules:
        if not schedule.active:
            continue
        if schedule.kind == ScheduleKind.DAILY and schedule.time_of_day:
            hour, minute = (int(part) for part in schedule.time_of_day.split(":"))
            local = datetime.combine(today, time(hour, minute), tzinfo=LOCAL_TZ)
            at = local.astimezone(UTC).replace(tzinfo=None)
        elif schedule.kind == ScheduleKind.ONCE and schedule.run_at is not None:
            at = schedule.run_at
            if at.replace(tzinfo=UTC).astimezone(LOCAL_TZ).date() != today:
                continue
        else:
            continue
        slots.append(ProgrammeSlot(at=at, schedule=schedule, done=at <= now))
    return sorted(slots, key=lambda slot: slot.at)


def fire_schedule(schedule_id: int) -> None:
    """Entry point of every stored job: hands the schedule to the running service."""
    if _fire_callback is None:
        _LOGGER.error("schedule %s fired with no running service", schedule_id)
        return
    _fire_callback(schedule_id)


def job_id(schedule_id: int) -> str:
    return f"schedule-{schedule_id}"


class Scheduler:
    def __init__(self, engine: Engine, fire: Callable[[int], None]) -> None:
        self._fire = fire
        self._scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine)},
            job_defaults={
                "coalesce": True,
                "misfire_grace_time": MISFIRE_GRACE_S,
                "max_instances": 1,
            },
            timezone=UTC,
        )
        self._scheduler.add_listener(self._log_problem, EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def start(self) -> None:
        global _fire_callback
        _fire_callback = self._fire
        self._scheduler.start()
        _LOGGER.info("scheduler started with %d stored jobs", len(self._scheduler.get_jobs()))

    def stop(self) -> None:
        global _fire_callback
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        _fire_callback = None

    def add(self, schedule: Schedule) -> None:
        if schedule.kind == ScheduleKind.ONCE:
            assert schedule.run_at is not None
            trigger: DateTrigger | CronTrigger = DateTrigger(
                run_date=schedule.run_at.replace(tzinfo=UTC)
            )
        else:
            assert schedule.time_of_day is not None
            hour, minute = schedule.time_of_day.split(":")
            trigger = CronTrigger(hour=int(hour), minute=int(minute), timezone=LOCAL_TZ)
        self._scheduler.add_job(
            "broadcast.scheduling:fire_schedule",
            trigger=trigger,
            args=[schedule.id],
            id=job_id(schedule.id),
            name=f"schedule {schedule.id}",
            replace_existing=True,
        )

    def remove(self, schedule_id: int) -> None:
        job = self._scheduler.get_job(job_id(schedule_id))
        if job is not None:
            job.remove()

    def next_run(self, schedule_id: int) -> datetime | None:
        """Next fire time in UTC (naive), or None when the job is done or unknown."""
        job = self._scheduler.get_job(job_id(schedule_id))
        if job is None or job.next_run_time is None:
            return None
        return job.next_run_time.astimezone(UTC).replace(tzinfo=None)

    @staticmethod
    def _log_problem(event: JobExecutionEvent) -> None:
        if event.exception is not None:
            _LOGGER.error("job %s failed: %s", event.job_id, event.exception)
        else:
            _LOGGER.warning("job %s missed its run time %s", event.job_id, event.scheduled_run_time)
