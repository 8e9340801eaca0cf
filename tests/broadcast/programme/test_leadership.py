"""One scheduler per data directory: the flock decides, a standby takes over when it is freed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

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
