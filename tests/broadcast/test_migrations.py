"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from broadcast.models import Base
from broadcast.service import BroadcastService


def test_migrations_match_models(service: BroadcastService) -> None:
    with service.db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        diff = [
            change
            for change in compare_metadata(context, Base.metadata)
            if not (change[0] == "remove_table" and change[1].name == "apscheduler_jobs")
        ]
    assert diff == []
