"""The engine Loa makes for PostgreSQL (always a real server here, whatever `--db` says)."""

from __future__ import annotations

import uuid

import pytest

from broadcast.store.db import make_engine

pytestmark = pytest.mark.integration  # a PostgreSQL server


def test_postgresql_sessions_plan_without_jit(postgres_server: object) -> None:
    """JIT compiling costs 20–25 ms a statement once a plan's estimate passes jit_above_cost,
    as a province's reports did: Loa's sessions turn it off, whatever the server's default."""
    url = postgres_server.create_database(f"loa_jit_{uuid.uuid4().hex[:12]}")  # type: ignore[attr-defined]
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
    finally:
        engine.dispose()
