"""One scheduler per data directory: the flock decides, a standby takes over when it is freed; a
leader whose database went away pauses until it can take the lock again."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broadcast.programme.jobs import Scheduler
from broadcast.programme.leadership import Leadership
from broadcast.store.locks import FileLock


def test_the_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.lock"
    first, second = FileLock(path), FileLock(path)
    assert first.acquire()
    assert first.acquire()  # already held: still ours
    assert not second.acquire()
    first.release()
    assert second.acquire()
    assert not first.acquire()
    second.release()


def test_a_standby_takes_over_when_the_leader_steps_down(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.lock"
    elected: list[str] = []
    taken_over = threading.Event()

    def on_elected(name: str) -> None:
        elected.append(name)
        if name == "standby":
            taken_over.set()

    leader = Leadership(FileLock(path), 0.1, lambda: on_elected("leader"), lambda: None)
    standby = Leadership(FileLock(path), 0.1, lambda: on_elected("standby"), lambda: None)
    leader.start()
    standby.start()
    try:
        assert leader.leading and not standby.leading
        time.sleep(0.4)
        assert elected == ["leader"]
        leader.stop_watching()
        leader.release()
        assert taken_over.wait(5)
        assert standby.leading and elected == ["leader", "standby"]
    finally:
        for side in (leader, standby):
            side.stop_watching()
            side.release()


def test_the_leader_ticks(tmp_path: Path) -> None:
    ticks = threading.Semaphore(0)
    leader = Leadership(FileLock(tmp_path / "l"), 0.05, lambda: None, ticks.release)
    leader.start()
    try:
        assert all(ticks.acquire(timeout=5) for _ in range(3))
    finally:
        leader.stop_watching()
        leader.release()


class _FlakyLock:
    """A lock on a database that can go away: `down` makes every call fail as a dead server
    does; `taken` says another process took the lock meanwhile."""

    description = "flaky lock"

    def __init__(self) -> None:
        self.held = False
        self.down = False
        self.taken = False

    def acquire(self, blocking: bool = False) -> bool:
        if self.down:
            raise ConnectionError("connection refused")
        if self.taken:
            return False
        self.held = True
        return True

    def release(self) -> None:
        self.held = False

    def alive(self) -> bool:
        if self.down:
            self.held = False
        return self.held


def _wait(condition, timeout_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_leader_pauses_while_the_database_is_away_and_resumes_on_its_return() -> None:
    """The primary died: nobody can say who holds the lock, so the leader pauses instead of
    ending its process; once a database answers (the promoted standby) it takes the lock and
    resumes."""
    lock = _FlakyLock()
    calls: list[str] = []
    ticks = threading.Semaphore(0)
    leader = Leadership(
        lock, 0.05, lambda: calls.append("elected"), ticks.release,
        on_lost=lambda: calls.append("lost"),
        on_paused=lambda: calls.append("paused"),
        on_resumed=lambda: calls.append("resumed"),
    )  # fmt: skip
    leader.start()
    try:
        assert leader.leading
        lock.down = True
        assert _wait(lambda: "paused" in calls) and not leader.leading
        time.sleep(0.3)  # still away: it waits, paused, and neither ticks nor gives up
        while ticks.acquire(timeout=0):
            pass
        assert calls == ["elected", "paused"]
        lock.down = False
        assert _wait(lambda: "resumed" in calls) and leader.leading
        assert ticks.acquire(timeout=5)
        assert calls == ["elected", "paused", "resumed"]
    finally:
        leader.stop_watching()
        leader.release()


def test_a_paused_leader_that_finds_the_lock_taken_steps_down() -> None:
    lock = _FlakyLock()
    lost = threading.Event()
    leader = Leadership(lock, 0.05, lambda: None, lambda: None, on_lost=lost.set)
    leader.start()
    try:
        lock.down = True
        assert _wait(lambda: not leader.leading)
        lock.taken, lock.down = True, False  # another server reached the new primary first
        assert lost.wait(5) and not leader.leading
    finally:
        leader.stop_watching()
        leader.release()


def test_a_paused_scheduler_fires_a_run_due_meanwhile_once_on_resuming() -> None:
    fired: list[int] = []
    scheduler = Scheduler(fired.append, lambda _id, _at: None, grace_s=60)
    scheduler.start()
    try:
        scheduler.pause()
        due = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=0.1)
        scheduler.sync_runs([(7, due)])
        time.sleep(0.4)
        assert fired == []
        scheduler.resume()
        assert _wait(lambda: fired == [7])
        time.sleep(0.2)
        assert fired == [7]
    finally:
        scheduler.stop()
