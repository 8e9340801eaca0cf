"""Schedulers on several hosts share one PostgreSQL database: an advisory lock decides who leads.

These tests always run on a real PostgreSQL server (whatever `--db` says), since the lock
exists only there; a lost connection is made real with `pg_terminate_backend`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from broadcast.programme.leadership import Leadership
from broadcast.store import db
from broadcast.store.locks import AdvisoryLock, FileLock, advisory_key, process_lock

pytestmark = pytest.mark.integration  # a PostgreSQL server


@pytest.fixture
def engine(postgres_server: object) -> Iterator[Engine]:
    url = postgres_server.create_database(f"loa_lock_{uuid.uuid4().hex[:12]}")  # type: ignore[attr-defined]
    engine = create_engine(url)
    yield engine
    engine.dispose()


TERMINATE_WAIT_MS = 10_000


def _terminate_holders(engine: Engine, key: int) -> int:
    """Kill the server-side sessions holding advisory lock `key`, as a network cut would, and
    wait (at most TERMINATE_WAIT_MS) until they are gone: the signal alone returns at once, and
    a session still exiting still holds its lock."""
    query = text(
        f"SELECT pg_terminate_backend(pid, {TERMINATE_WAIT_MS}) FROM pg_locks "
        "WHERE locktype = 'advisory' "
        "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :key"
    )
    with engine.connect() as connection:
        killed = connection.execute(query, {"key": key}).all()
        connection.commit()
    return len(killed)


def test_the_lock_follows_the_database(engine: Engine, tmp_path: Path) -> None:
    assert isinstance(process_lock(engine, "scheduler", tmp_path / "s.lock"), AdvisoryLock)
    sqlite = create_engine(f"sqlite:///{tmp_path / 'loa.db'}")
    assert isinstance(process_lock(sqlite, "scheduler", tmp_path / "s.lock"), FileLock)
    assert advisory_key("scheduler") != advisory_key("publish")


def test_the_advisory_lock_is_exclusive_across_connections(engine: Engine) -> None:
    first, second = AdvisoryLock(engine, "scheduler"), AdvisoryLock(engine, "scheduler")
    assert first.acquire() and first.acquire()
    assert not second.acquire()
    assert AdvisoryLock(engine, "publish").acquire()  # another name, another lock
    first.release()
    assert second.acquire() and not first.acquire()
    assert second.alive() and not first.alive()
    second.release()


def test_a_blocking_acquire_waits_for_the_holder(engine: Engine) -> None:
    holder, waiter = AdvisoryLock(engine, "publish"), AdvisoryLock(engine, "publish")
    assert holder.acquire()
    got = threading.Event()
    thread = threading.Thread(target=lambda: waiter.acquire(blocking=True) and got.set())
    thread.start()
    assert not got.wait(0.5)
    holder.release()
    assert got.wait(10)
    thread.join(10)
    waiter.release()


def test_a_killed_connection_loses_the_lock_and_the_holder_knows(engine: Engine) -> None:
    lock = AdvisoryLock(engine, "scheduler")
    assert lock.acquire()
    assert _terminate_holders(engine, lock.key) == 1
    assert not lock.alive()
    other = AdvisoryLock(engine, "scheduler")
    assert other.acquire()  # the database freed it with the connection
    assert not lock.acquire()  # and the holder no longer believes it holds it
    other.release()


def test_a_leader_whose_lock_is_taken_steps_down(engine: Engine) -> None:
    """The leader's connection dies and a standby on another host takes the lock before the
    leader notices: the leader must stop leading (`on_lost`), not go on firing.

    The leader is held inside a tick while its lock is killed and taken, so its next check
    cannot retake the lock first (under load it did, and the usurper found the lock held)."""
    lost = threading.Event()
    in_tick, usurped = threading.Event(), threading.Event()

    def tick() -> None:
        in_tick.set()
        usurped.wait(10)

    leader = Leadership(AdvisoryLock(engine, "scheduler"), 0.1, lambda: None, tick,
                        on_lost=lost.set)  # fmt: skip
    leader.start()
    usurper = AdvisoryLock(engine, "scheduler")
    try:
        assert leader.leading
        assert in_tick.wait(10)
        assert _terminate_holders(engine, leader.lock.key) == 1  # type: ignore[attr-defined]
        assert usurper.acquire()
        usurped.set()
        assert lost.wait(10) and not leader.leading
    finally:
        usurped.set()
        leader.stop_watching()
        leader.release()
        usurper.release()


def test_a_leader_retakes_a_lock_nobody_else_took(engine: Engine) -> None:
    lost = threading.Event()
    ticks = threading.Semaphore(0)
    leader = Leadership(AdvisoryLock(engine, "scheduler"), 0.05, lambda: None, ticks.release,
                        on_lost=lost.set)  # fmt: skip
    leader.start()
    try:
        assert _terminate_holders(engine, leader.lock.key) == 1  # type: ignore[attr-defined]
        assert all(ticks.acquire(timeout=10) for _ in range(3))
        assert leader.leading and leader.lock.alive() and not lost.is_set()
        assert not AdvisoryLock(engine, "scheduler").acquire()
    finally:
        leader.stop_watching()
        leader.release()


def test_every_postgresql_connection_has_keepalives_both_ways(engine: Engine) -> None:
    """A dead node's scheduler lock is freed by the server within seconds, not hours; a URL's
    own settings are kept."""
    shared = db.make_engine(engine.url.render_as_string(hide_password=False))
    try:
        with shared.connect() as connection:
            shown = {
                name: connection.exec_driver_sql(f"SHOW {name}").scalar()
                for name in ("tcp_keepalives_idle", "tcp_keepalives_interval")
            }
            assert shown == {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5"}
    finally:
        shared.dispose()
    own = db.postgresql_url("postgresql+psycopg://h/d?keepalives_idle=60&options=-c%20x=1")
    assert own.query["keepalives_idle"] == "60" and own.query["options"] == "-c x=1"
    assert own.query["keepalives"] == "1"
