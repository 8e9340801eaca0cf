"""Database engine, sessions and migrations (SQLAlchemy 2 + Alembic).

The schema is created and upgraded only through Alembic migrations, on SQLite (the single-machine
default) and PostgreSQL alike.

A PostgreSQL URL may name several servers, a primary and its standbys (libpq's multi-host URL,
in any of the forms `postgresql_url` accepts): every new connection goes to the one that
accepts writes (`target_session_attrs=read-write` unless the URL says otherwise), a pooled
connection is tested before use, so after a standby is promoted the next checkout reaches it,
and a dead host is given up within bounded time (`CONNECT_DEFAULTS`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

_LOGGER = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# What a database that cannot be reached raises (connection refused, the server gone, only a
# standby that takes no writes left, SQLite locked too long): not the caller's fault, and worth
# trying again in a moment (the web answers 503).
DatabaseUnreachable = OperationalError


# libpq connection parameters Loa sets unless the URL gives them: a host that does not answer is
# given up after `connect_timeout` seconds (and the next one in the list tried); an established
# connection to a host that died without closing it (power, network) is found dead by TCP
# keepalives within about 5 + 3 x 2 s, and a write it cannot deliver fails after 9 s. So a node
# cut off from the database notices first: its lock check (every 3 s) fails within 9 s and its
# attempt to take the lock again within 5 s, and an old leader stops (at most 17 s) before the
# server frees its lock to another (25 s, `SESSION_OPTIONS`).
CONNECT_DEFAULTS: dict[str, str] = {
    "target_session_attrs": "read-write",  # never a standby: Loa writes
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "9000",  # milliseconds
}

_LIBPQ_SCHEMES = ("postgresql", "postgres")
_NETLOC_HOSTS = re.compile(
    r"^(?P<scheme>[^:]+)://(?:(?P<userinfo>[^@/]*)@)?(?P<hosts>[^/?]*,[^/?]*)"
)


def postgresql_url(url: str) -> URL:
    """SQLAlchemy's URL (psycopg 3) for a PostgreSQL URL written as libpq or SQLAlchemy would:
    `postgresql://` and `postgres://` mean psycopg 3 (the driver Loa installs), and several
    servers may be given as `host1:port1,host2:port2` in the address (libpq's form), as
    `?host=host1:port1&host=host2:port2` (SQLAlchemy's), or as `?host=host1:port1,host2:port2`.
    `CONNECT_DEFAULTS` are added for the parameters the URL leaves out."""
    found = _NETLOC_HOSTS.match(url)
    if found:  # SQLAlchemy's parser takes one host[:port] in the address: move them to the query
        hosts = "&".join(f"host={host}" for host in found["hosts"].split(","))
        rest = url[found.end() :]
        path, _, query = rest.partition("?")
        userinfo = f"{found['userinfo']}@" if found["userinfo"] is not None else ""
        query = f"{hosts}&{query}" if query else hosts
        url = f"{found['scheme']}://{userinfo}{path or '/'}?{query}"
    parsed = make_url(url)
    if parsed.drivername in _LIBPQ_SCHEMES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    query = dict(parsed.query)
    host = query.get("host")
    if isinstance(host, str) and "," in host and ":" in host and "port" not in query:
        query["host"] = tuple(host.split(","))
    for name, value in CONNECT_DEFAULTS.items():
        query.setdefault(name, value)
    return parsed.set(query=query)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if not url.startswith("postgres"):
        return create_engine(url, pool_pre_ping=True)
    # pre-ping: a pooled connection to a server that died (a primary replaced by its promoted
    # standby) is found dead at checkout and replaced, instead of failing the request
    address = postgresql_url(url)
    connect_args = {} if "options" in address.query else {"options": SESSION_OPTIONS}
    return create_engine(address, pool_pre_ping=True, connect_args=connect_args)


# What every session asks of the server, unless the URL gives its own `options`:
# - JIT compiling a plan costs 20–25 ms of CPU, more than any of Loa's queries takes to run:
#   PostgreSQL starts it once a plan's estimate passes jit_above_cost, as a province's reports
#   do, and every page then paid for it;
# - the server's keepalives free a dead node's advisory locks, the scheduler's among them,
#   within 10 + 3 × 5 = 25 s of its last packet, not the kernel's two hours.
SESSION_OPTIONS = (
    "-c jit=off -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the web, the scheduler and the MQTT thread read while one writes."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@dataclass(frozen=True)
class Reached:
    """The PostgreSQL server a new connection reached, of those the URL names."""

    host: str
    port: str
    standby: bool  # in recovery: a streaming replica not promoted
    read_only: bool  # no writes (a standby, or default_transaction_read_only)

    def __str__(self) -> str:
        role = "standby, read-only" if self.standby else "read-only" if self.read_only else None
        return f"{self.host}:{self.port}, {role or 'read-write'}"


def server_reached(engine: Engine) -> Reached | None:
    """Where a new connection goes (None on SQLite): which host of a multi-host URL, and
    whether it takes writes."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        standby, read_only = connection.exec_driver_sql(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'"
        ).one()
        info = connection.connection.dbapi_connection.info  # type: ignore[union-attr]
        return Reached(str(info.host), str(info.port), bool(standby), bool(read_only))


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    """The newest migration the code has."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None: not created by Loa yet)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest migration (or to `revision`)."""
    _migrate(engine, lambda config: command.upgrade(config, revision))


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision` (maintenance; the server only upgrades)."""
    _migrate(engine, lambda config: command.downgrade(config, revision))


def _migrate(engine: Engine, run: Callable[[Config], None]) -> None:
    """Run Alembic on one connection. SQLite changes a table by copying it and dropping the old
    one (Alembic's batch mode), which enforced foreign keys forbid while rows point at it: as
    SQLite's documentation prescribes, they are off during the change and checked after it."""
    config = alembic_config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:  # outside any transaction, where SQLite honours it
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                run(config)
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                connection.commit()
                if broken:
                    raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


class Database:
    """Owns the engine and hands out sessions: `with db.session() as s: …` commits or rolls back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
