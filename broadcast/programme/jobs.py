"""The scheduler (APScheduler 3.11): fires each planned run at its time, and periodic jobs.

Runs are planned into the database first (`broadcast.programme.planning`): the database is the
truth and the scheduler holds one date job per waiting run (`run-<broadcast id>`), rebuilt from it
by `sync_runs()` whenever the leader plans. Its job store therefore lives in memory: a restarted
leader re-plans, and a run whose time passed is fired once if within the grace period
(`misfire_grace_time`) and reported missed if older (`on_missed`, logged), never dropped.

Only the process holding the scheduler lock (`broadcast.programme.leadership`) starts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

_LOGGER = logging.getLogger(__name__)

RUN_PREFIX = "run-"


def run_job_id(broadcast_id: int) -> str:
    return f"{RUN_PREFIX}{broadcast_id}"


class Scheduler:
    def __init__(
        self,
        fire: Callable[[int], None],
        on_missed: Callable[[int, datetime], None],
        grace_s: float,
    ) -> None:
        self._fire = fire
        self._on_missed = on_missed
        self._scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            job_defaults={"coalesce": True, "misfire_grace_time": int(grace_s), "max_instances": 1},
            timezone=UTC,
        )
        self._scheduler.add_listener(self._log_problem, EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        self._scheduler.start()
        _LOGGER.info("scheduler started")

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def pause(self) -> None:
        """Fire nothing until `resume()` (the leader lost its lock with the database); a run
        due meanwhile fires on resuming if still within the grace period, else is missed."""
        if self._scheduler.running:
            self._scheduler.pause()
            _LOGGER.warning("scheduler paused")

    def resume(self) -> None:
        if self._scheduler.running:
            self._scheduler.resume()
            _LOGGER.info("scheduler resumed")

    def every(self, job_id: str, seconds: float, func: Callable[[], None]) -> None:
        """A periodic job (the manifest refresh)."""
        self._scheduler.add_job(
            func, IntervalTrigger(seconds=seconds), id=job_id, name=job_id, replace_existing=True
        )

    def sync_runs(self, due: Iterable[tuple[int, datetime]]) -> None:
        """One date job per waiting run (ids and UTC times); jobs of other runs are removed."""
        wanted = {run_job_id(broadcast_id): at for broadcast_id, at in due}
        for job in self._scheduler.get_jobs():
            if job.id.startswith(RUN_PREFIX) and job.id not in wanted:
                job.remove()
        for job_id, at in wanted.items():
            if self._scheduler.get_job(job_id) is not None:
                continue
            broadcast_id = int(job_id.removeprefix(RUN_PREFIX))
            self._scheduler.add_job(
                self._fire,
                DateTrigger(run_date=at.replace(tzinfo=UTC)),
                args=[broadcast_id],
                id=job_id,
                name=f"broadcast {broadcast_id}",
            )

    def _log_problem(self, event: JobExecutionEvent) -> None:
        if event.exception is not None:
            _LOGGER.error("job %s failed: %s", event.job_id, event.exception)
            return
        _LOGGER.warning("job %s missed its run time %s", event.job_id, event.scheduled_run_time)
        if event.job_id.startswith(RUN_PREFIX):
            at = event.scheduled_run_time.astimezone(UTC).replace(tzinfo=None)
            self._on_missed(int(event.job_id.removeprefix(RUN_PREFIX)), at)
