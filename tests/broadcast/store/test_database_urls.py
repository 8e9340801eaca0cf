"""`LOA_DATABASE_URL` names PostgreSQL as libpq or SQLAlchemy would, one server or a primary with
its standbys; every form reaches psycopg 3 with the same hosts, a read-write session and bounded
timeouts (`broadcast.store.db.postgresql_url`)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from support import LOOPBACK, free_port

from broadcast.store.db import CONNECT_DEFAULTS, make_engine, postgresql_url


def _connect_args(url: str) -> dict[str, object]:
    parsed = postgresql_url(url)
    _args, options = create_engine(parsed).dialect.create_connect_args(parsed)
    options.pop("context", None)
    return options


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://loa:pw@10.0.0.1:5432,10.0.0.2:5433/loa",  # libpq's multi-host address
        "postgres://loa:pw@10.0.0.1:5432,10.0.0.2:5433/loa",
        "postgresql+psycopg://loa:pw@/loa?host=10.0.0.1:5432&host=10.0.0.2:5433",  # SQLAlchemy's
        "postgresql://loa:pw@/loa?host=10.0.0.1:5432,10.0.0.2:5433",
        "postgresql://loa:pw@/loa?host=10.0.0.1,10.0.0.2&port=5432,5433",  # libpq's query form
    ],
)
def test_every_multi_host_form_reaches_psycopg_alike(url: str) -> None:
    options = _connect_args(url)
    assert postgresql_url(url).drivername == "postgresql+psycopg"
    assert (options["host"], options["port"]) == ("10.0.0.1,10.0.0.2", "5432,5433")
    assert (options["user"], options["password"], options["dbname"]) == ("loa", "pw", "loa")
    assert options["target_session_attrs"] == "read-write"  # a standby is never written to
    for name, value in CONNECT_DEFAULTS.items():
        assert options[name] == value


def test_the_url_wins_over_the_defaults() -> None:
    url = "postgresql+psycopg://loa@db:6432/loa?connect_timeout=2&target_session_attrs=primary"
    options = _connect_args(url)
    assert (options["host"], options["port"]) == ("db", 6432)
    assert options["connect_timeout"] == "2" and options["target_session_attrs"] == "primary"
    assert options["keepalives_idle"] == CONNECT_DEFAULTS["keepalives_idle"]


def test_other_parameters_and_sockets_pass_through() -> None:
    options = _connect_args("postgresql://loa@/loa?host=/var/run/postgresql&sslmode=require")
    assert options["host"] == "/var/run/postgresql" and options["sslmode"] == "require"


def test_sqlite_is_left_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'loa.db'}")
    try:
        assert engine.dialect.name == "sqlite" and not engine.url.query
    finally:
        engine.dispose()


@pytest.mark.integration  # a PostgreSQL server
def test_a_real_connection_carries_them_and_skips_a_dead_host(postgres_server: object) -> None:
    """The first host refuses (nothing listens there): the connection goes on to the second,
    with Loa's timeouts and keepalives in force on it."""
    port = postgres_server.port  # type: ignore[attr-defined]
    engine = make_engine(
        f"postgresql://postgres@{LOOPBACK}:{free_port()},{LOOPBACK}:{port}/postgres"
    )
    try:
        with engine.connect() as connection:
            info = connection.connection.dbapi_connection.info  # type: ignore[union-attr]
            parameters = info.get_parameters()
            assert info.port == port
    finally:
        engine.dispose()
    for name, value in CONNECT_DEFAULTS.items():
        assert parameters[name] == value, name
