"""Runs the server was not running for: within the grace period they fire once on start;
older ones are logged as missed and recorded as `missed` broadcasts, never dropped."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from service_support import (
    RecordingDispatcher,
    Users,
    add_devices,
    approved_bulletin,
    recording_service,
    seed_commune,
    wait_for,
)

from broadcast.const import LOCAL_TZ, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast
from wire.protocol import Priority

GRACE_S = 3.0


def _once(service: BroadcastService, users: Users, zone: str, at: datetime) -> int:
    bulletin = approved_bulletin(service, users.officer, f"Tin {zone}", f"Thông báo cho {zone}.")
    return service.scheduling.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.ONCE,
            zone_ids=[zone],
            priority=Priority.NORMAL,
            run_at=at.astimezone(LOCAL_TZ).isoformat(),
        ),
    )


def _rows(service: BroadcastService, schedule_id: int) -> list[Broadcast]:
    with service.db.session() as session:
        rows = list(session.query(Broadcast).filter(Broadcast.schedule_id == schedule_id))
        for row in rows:
            _ = row.deliveries
        return rows


def _sleep_until(at: datetime) -> None:
    time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))


def _setup(tmp_path: Path) -> tuple[BroadcastService, RecordingDispatcher, Users]:
    service, sent = recording_service(tmp_path / "data", misfire_grace_s=GRACE_S)
    users = seed_commune(service)
    add_devices(service, {"loa-a-01": "thon-a", "loa-b-01": "thon-b"})
    return service, sent, users


def test_runs_never_planned_fire_or_are_recorded_missed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server was down from before the runs were planned until after them."""
    service, _sent, users = _setup(tmp_path)
    recent_at = datetime.now(UTC) + timedelta(seconds=6)
    old_at = recent_at - timedelta(seconds=5)  # 5 s + 1 s late at start: past the 3 s grace
    old = _once(service, users, "thon-a", old_at)
    recent = _once(service, users, "thon-b", recent_at)
    assert _rows(service, old) == [] and _rows(service, recent) == []  # nobody leads yet
    _sleep_until(recent_at + timedelta(seconds=1))
    with caplog.at_level(logging.WARNING, logger="broadcast.programme.planning"):
        service.start()
    try:
        [missed] = _rows(service, old)
        assert missed.status == "missed" and "not running" in missed.error
        assert [(d.device_id, d.state) for d in missed.deliveries] == [("loa-a-01", "failed")]
        assert any(
            "missed run" in r.message and f"broadcast {missed.id} " in r.message
            for r in caplog.records
        ), caplog.text
        wait_for(lambda: _rows(service, recent)[0].status == "dispatched", 10, "the recent run")
        assert len(_rows(service, recent)) == 1
    finally:
        service.stop()


def test_planned_runs_fire_once_or_are_recorded_missed_after_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The runs were planned (and in the receivers' manifests); then the server stopped."""
    first, _sent, users = _setup(tmp_path)
    first.start()
    # both planned well ahead: scheduling them (speech included) took over 2 s when loaded
    recent_at = datetime.now(UTC) + timedelta(seconds=15)
    old = _once(first, users, "thon-a", recent_at - timedelta(seconds=5))
    recent = _once(first, users, "thon-b", recent_at)
    assert [r.status for r in _rows(first, old) + _rows(first, recent)] == ["scheduled"] * 2
    first.stop()
    _sleep_until(recent_at + timedelta(seconds=1))

    second, _sent2 = recording_service(tmp_path / "data", misfire_grace_s=GRACE_S)
    with caplog.at_level(logging.WARNING, logger="broadcast.programme.planning"):
        second.start()
    try:
        [missed] = _rows(second, old)
        assert missed.status == "missed"
        # it was in the receivers' manifests: they may still report having played it
        assert [d.state for d in missed.deliveries] == ["queued"]
        assert any(f"broadcast {missed.id} " in r.message for r in caplog.records), caplog.text
        [fired] = wait_for(
            lambda: [r for r in _rows(second, recent) if r.status == "dispatched"], 10
        )
        assert fired.dispatched_at is not None
        assert len(_rows(second, recent)) == 1
    finally:
        second.stop()


def test_a_run_fires_at_its_time(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    service, _sent, users = _setup(tmp_path)
    service.start()
    try:
        at = datetime.now(UTC) + timedelta(seconds=2)
        schedule_id = _once(service, users, "thon-a", at)
        # not "scheduled" yet here: on a loaded machine scheduling itself can take past `at`;
        # that it did not fire early is what dispatched_at says below
        assert len(_rows(service, schedule_id)) == 1
        with caplog.at_level(logging.INFO, logger="broadcast.programme.leader"):
            [row] = wait_for(
                lambda: [r for r in _rows(service, schedule_id) if r.status == "dispatched"], 10
            )
        assert row.dispatched_at >= at.replace(tzinfo=None) - timedelta(seconds=0.1)
        assert f"schedule {schedule_id} fired: broadcast {row.id}" in caplog.text
    finally:
        service.stop()
