"""The start window: work put off until the process's imminent starts are made, and the play
threads that use it (a start never waits on reporting, its own or another receiver's)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from devices import starts
from devices.playback import Outcome, Run, launch
from devices.players import PlayContext
from devices.starts import SETTLE_S, StartWindow
from devices.timeline import Item, Origin
from wire.protocol import PlayBody

SHA = "ab" * 32
CLOCKS_S = 0.003  # the window converts wall-clock moments to the monotonic clock


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.002)


def test_deferred_work_waits_for_the_start_and_settles_after_its_moment() -> None:
    window = StartWindow()
    moment = time.time() + 0.05
    start = window.imminent(moment)
    ran: list[float] = []
    window.defer(lambda: ran.append(time.time()))
    time.sleep(0.1)  # past the moment: the start is late, but not made yet
    assert ran == []
    assert not window.quiet(0.01)
    start.made()
    start.made()  # again: nothing
    wait_for(lambda: ran)
    assert window.quiet(0.0)
    later = time.time() + 0.05
    window.imminent(later).made()  # launched early: the window still settles past its moment
    window.defer(lambda: ran.append(time.time()))
    wait_for(lambda: len(ran) == 2)
    assert ran[1] >= later + SETTLE_S - CLOCKS_S


def test_a_dropped_start_does_not_hold_the_window() -> None:
    window = StartWindow()
    start = window.imminent(time.time() + 5.0)
    ran: list[float] = []
    window.defer(lambda: ran.append(time.time()))
    start.dropped()
    began = time.time()
    wait_for(lambda: ran, timeout=1.0)
    assert ran[0] - began < 0.5
    start.dropped()  # again: nothing
    assert window.quiet(0.0)


def test_deferred_work_runs_in_order_and_at_the_latest_after_max_defer(monkeypatch) -> None:
    monkeypatch.setattr(starts, "MAX_DEFER_S", 0.05)
    window = StartWindow()
    window.imminent(time.time() - 1.0)  # overdue and never made
    ran: list[int] = []

    def broken() -> None:
        raise RuntimeError("a deferred wake-up that fails")

    began = time.monotonic()
    window.defer(broken)
    window.defer(lambda: ran.append(1))
    window.defer(lambda: ran.append(2))
    wait_for(lambda: len(ran) == 2, timeout=2.0)
    assert ran == [1, 2]
    assert time.monotonic() - began >= 0.05 - CLOCKS_S
    assert not window.quiet(0.02)


def item(name: str, moment: float) -> Item:
    return Item(
        uid=name,
        body=PlayBody(broadcast_id=1, media_sha256=SHA, play_at=moment),
        command_id=name,
        origin=Origin.COMMAND,
        issued_at=moment - 3,
        ready_at=moment,
        deadline=moment + 60,
        arrival=0,
    )


class _Cache:
    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, sha256: str) -> Path:
        return self.path


class _Player:
    """Records the moment each sound starts."""

    def __init__(self, log: list[tuple[str, str, float]], lock: threading.Lock) -> None:
        self.log, self.lock = log, lock

    def play(self, path: Path, context: PlayContext) -> None:
        at = time.time()
        context.on_start()
        with self.lock:
            self.log.append(("start", context.command_id, at))

    def relay(self, url: str, duration_s: float, context: PlayContext) -> None:
        raise AssertionError("no relay here")

    def stop(self) -> None:
        pass


@pytest.mark.parametrize("gap_s", [0.0, 0.01])
def test_no_report_runs_ahead_of_a_start_of_the_process(tmp_path: Path, gap_s: float) -> None:
    log: list[tuple[str, str, float]] = []
    lock = threading.Lock()
    moment = time.time() + 0.3
    runs = [Run(item("a", moment), moment), Run(item("b", moment + gap_s), moment + gap_s)]

    def waker(name: str) -> Any:
        def wake() -> None:
            with lock:
                log.append(("wake", name, time.time()))

        return wake

    cache: Any = _Cache(tmp_path / "x.mp3")
    for run in runs:
        launch(run, "loa-1", cache, _Player(log, lock), waker(run.item.uid))
    for run in runs:
        assert run.thread is not None
        run.thread.join(5)
    wait_for(lambda: sum(1 for what, *_ in log if what == "wake") == 4)  # start and end, each

    sounds = {who: at for what, who, at in log if what == "start"}
    wakes = [at for what, _who, at in log if what == "wake"]
    assert min(wakes) >= max(sounds.values())
    assert min(wakes) >= moment + gap_s + SETTLE_S - CLOCKS_S
    for run in runs:
        assert run.outcome is Outcome.FINISHED
        assert run.started_at is not None
        assert run.started_at <= sounds[run.item.uid] < run.started_at + 0.05
        assert run.started_at >= run.start_at
