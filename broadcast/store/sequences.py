"""Per-stream monotonic sequence numbers (`Command.seq`), persisted in the `sequences` table.

Every command and manifest carries the next number of its stream (the topic it is published
on), so a receiver can tell a new message from a replayed or re-delivered copy. Numbers are
taken atomically in their own short transaction (one upsert … RETURNING, for one stream or for
every stream of a broadcast at once: `take`), never inside a caller's session, so two processes
can never hand out the same number and a restarted server goes on upward. The publisher holds
`Settings.publish_lock_path` from taking a number until the broker has the message, so numbers
reach the broker in order too.

Internal counters that are not topics (the programme revision other processes watch) share the
table under names starting with "_", which no topic can.

`_epoch` is the sequence epoch every message carries (`Command.epoch`, 0 until the first
`loa keys rotate`): a receiver that accepted a sequence far beyond a stream's counter (a leaked
key, a bug, a restored database) refuses the stream until it sees a newer epoch. An epoch is the
Unix time of its rotation (or the last one plus one), so it only goes forward, even after the
database was restored from a backup taken before a rotation.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from collections.abc import Sequence as Sequence_
from typing import Any

from sqlalchemy import Engine, case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from broadcast.store.models import Sequence

_LOGGER = logging.getLogger(__name__)

PROGRAMME_REVISION = "_programme"  # bumped by any process that changes what is planned
REJECTED_ANSWERS = "_rejected_answers:"  # + device id: its refused state and event messages
EPOCH = "_epoch"  # the sequence epoch of every message sent (`loa keys rotate`)
SCHEDULE_LOCK = "_schedules"  # held while a schedule is checked for overlaps and saved
_UPSERT_DIALECTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def _increment(dialect: str, stream: str, amount: int = 1) -> Any:
    insert = _UPSERT_DIALECTS.get(dialect)
    if insert is None:
        raise RuntimeError(f"sequences need SQLite or PostgreSQL, not {dialect}")
    return (
        insert(Sequence)
        .values(stream=stream, value=amount)
        .on_conflict_do_update(
            index_elements=[Sequence.stream], set_={"value": Sequence.value + amount}
        )
        .returning(Sequence.value)
    )


def next_value(engine: Engine, stream: str) -> int:
    """Increment `stream` (starting at 1) and return the new value, committed."""
    with engine.begin() as connection:
        return int(connection.execute(_increment(engine.dialect.name, stream)).scalar_one())


def take(engine: Engine, streams: Iterable[str]) -> tuple[dict[str, int], int]:
    """The next number of each of `streams` and the current epoch, in one committed
    transaction (a broadcast to a hundred communes costs one round trip, not two hundred).

    A stream named more than once gets as many numbers; its entry is the last of them, the
    earlier ones being that value minus one, two, … (`numbered`)."""
    wanted = Counter(streams)
    if not wanted:
        return {}, current_value(engine, EPOCH)
    insert = _UPSERT_DIALECTS.get(engine.dialect.name)
    if insert is None:
        raise RuntimeError(f"sequences need SQLite or PostgreSQL, not {engine.dialect.name}")
    rows = [{"stream": stream, "value": amount} for stream, amount in sorted(wanted.items())]
    statement = insert(Sequence).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[Sequence.stream], set_={"value": Sequence.value + statement.excluded.value}
    ).returning(Sequence.stream, Sequence.value)
    with engine.begin() as connection:
        taken = {stream: int(value) for stream, value in connection.execute(statement)}
        epoch = connection.execute(
            select(Sequence.value).where(Sequence.stream == EPOCH)
        ).scalar_one_or_none()
    return taken, int(epoch or 0)


def numbered(streams: Sequence_[str], taken: dict[str, int]) -> list[int]:
    """The number of each of `streams` in order, from `take(engine, streams)`: a stream named
    twice gets its two numbers in increasing order."""
    remaining = Counter(streams)
    result = []
    for stream in streams:
        remaining[stream] -= 1
        result.append(taken[stream] - remaining[stream])
    return result


def hold(session: Session, name: str) -> None:
    """Take the lock `name` until `session` commits: the row's write lock serializes every
    transaction that holds the same name (SQLite locks the database, PostgreSQL the row)."""
    session.execute(_increment(session.get_bind().dialect.name, name))


def add(session: Session, name: str, amount: int) -> None:
    """Add `amount` to the counter `name` within `session`'s transaction."""
    session.execute(_increment(session.get_bind().dialect.name, name, amount))


def counters(session: Session, prefix: str) -> dict[str, int]:
    """The counters whose names start with `prefix`, keyed by the rest of the name."""
    rows = session.execute(
        select(Sequence.stream, Sequence.value).where(
            Sequence.stream.startswith(prefix, autoescape=True)
        )
    )
    return {name[len(prefix) :]: int(value) for name, value in rows}


def advance_epoch(engine: Engine, now: int) -> int:
    """A new epoch, committed: `now` (Unix seconds), or the current one plus one if that is not
    below it (two rotations within a second, a clock set back)."""
    insert = _UPSERT_DIALECTS.get(engine.dialect.name)
    if insert is None:
        raise RuntimeError(f"sequences need SQLite or PostgreSQL, not {engine.dialect.name}")
    following = case((Sequence.value + 1 > now, Sequence.value + 1), else_=now)
    statement = (
        insert(Sequence)
        .values(stream=EPOCH, value=now)
        .on_conflict_do_update(index_elements=[Sequence.stream], set_={"value": following})
        .returning(Sequence.value)
    )
    with engine.begin() as connection:
        return int(connection.execute(statement).scalar_one())


def current_value(engine: Engine, stream: str) -> int:
    """The last value handed out on `stream`, 0 if none yet."""
    with engine.connect() as connection:
        value = connection.execute(
            select(Sequence.value).where(Sequence.stream == stream)
        ).scalar_one_or_none()
    return int(value or 0)
