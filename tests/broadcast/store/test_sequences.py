"""Per-stream sequence numbers: atomic, monotonic, persisted across restarts and processes."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broadcast.store import sequences
from broadcast.store.db import Database


def _database(path: Path) -> Database:
    database = Database(f"sqlite:///{path}")
    database.migrate()
    return database


def test_each_stream_counts_from_one(tmp_path: Path) -> None:
    database = _database(tmp_path / "loa.db")
    try:
        assert sequences.current_value(database.engine, "loa/v1/zone/a/cmd") == 0
        assert [sequences.next_value(database.engine, "loa/v1/zone/a/cmd") for _ in range(3)] == [
            1,
            2,
            3,
        ]
        assert sequences.next_value(database.engine, "loa/v1/zone/b/cmd") == 1
        assert sequences.current_value(database.engine, "loa/v1/zone/a/cmd") == 3
    finally:
        database.dispose()


def test_a_restarted_server_goes_on_upward(tmp_path: Path) -> None:
    first = _database(tmp_path / "loa.db")
    sequences.next_value(first.engine, "s")
    sequences.next_value(first.engine, "s")
    first.dispose()
    again = _database(tmp_path / "loa.db")
    try:
        assert sequences.next_value(again.engine, "s") == 3
    finally:
        again.dispose()


def test_threads_never_share_a_number(tmp_path: Path) -> None:
    database = _database(tmp_path / "loa.db")
    taken: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(40):
            value = sequences.next_value(database.engine, "s")
            with lock:
                taken.append(value)

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database.dispose()
    assert sorted(taken) == list(range(1, 201))


def _take(path: str, count: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    database = Database(f"sqlite:///{path}")
    out.put([sequences.next_value(database.engine, "s") for _ in range(count)])
    database.dispose()


def test_processes_never_share_a_number(tmp_path: Path) -> None:
    path = tmp_path / "loa.db"
    _database(path).dispose()
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=_take, args=(str(path), 30, out)) for _ in range(3)]
    for worker in workers:
        worker.start()
    taken = [value for _ in workers for value in out.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(taken) == list(range(1, 91))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Both databases: the batched upsert is written per dialect."""
    if request.param == "sqlite":
        database = _database(tmp_path / "loa.db")
    else:
        server = request.getfixturevalue("postgres_server")
        database = Database(server.create_database(f"loa_seq_{uuid.uuid4().hex[:12]}"))
        database.migrate()
    yield database.engine
    database.dispose()


def test_a_batch_takes_the_next_number_of_every_stream_and_the_epoch(engine: Engine) -> None:
    sequences.next_value(engine, "a")
    sequences.next_value(engine, "a")
    epoch = sequences.advance_epoch(engine, 1_800_000_000)
    taken, seen_epoch = sequences.take(engine, ["a", "b", "c"])
    assert taken == {"a": 3, "b": 1, "c": 1}
    assert seen_epoch == epoch
    assert sequences.next_value(engine, "a") == 4  # one-by-one and batches share the counters
    assert sequences.take(engine, ["a", "b"])[0] == {"a": 5, "b": 2}


def test_a_stream_named_twice_in_a_batch_gets_two_numbers_in_order(engine: Engine) -> None:
    streams = ["a", "b", "a"]
    taken, epoch = sequences.take(engine, streams)
    assert epoch == 0
    assert sequences.numbered(streams, taken) == [1, 1, 2]
    assert sequences.current_value(engine, "a") == 2


def test_an_empty_batch_takes_nothing(engine: Engine) -> None:
    assert sequences.take(engine, []) == ({}, 0)


def test_batches_and_single_numbers_from_threads_never_share_a_number(tmp_path: Path) -> None:
    database = _database(tmp_path / "loa.db")
    taken: list[int] = []
    lock = threading.Lock()

    def batches() -> None:
        for _ in range(20):
            got = sequences.numbered(["s", "s"], sequences.take(database.engine, ["s", "s"])[0])
            with lock:
                taken.extend(got)

    def singles() -> None:
        for _ in range(40):
            value = sequences.next_value(database.engine, "s")
            with lock:
                taken.append(value)

    threads = [threading.Thread(target=work) for work in (batches, singles, batches, singles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database.dispose()
    assert sorted(taken) == list(range(1, 161))
