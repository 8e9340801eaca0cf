"""programmes: schedule kinds, device targets, relays, occurrences, manifests, sequences

Existing schedules count as planned up to the upgrade: their earlier runs were fired by the
previous release (which recorded them without `occurrence_at`), so none is taken for missed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulletins") as batch:
        batch.add_column(sa.Column("relay_url", sa.String(1000), nullable=True))
        batch.add_column(sa.Column("duration_s", sa.Float(), nullable=True))
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("weekdays", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("cron", sa.String(100), nullable=True))
        batch.add_column(sa.Column("interval_h", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("series_key", sa.String(63), nullable=True))
        batch.add_column(sa.Column("valid_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("valid_to", sa.Date(), nullable=True))
        batch.add_column(sa.Column("device_ids", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("media_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("tts_engine", sa.String(20), nullable=False, server_default=""))
        batch.add_column(sa.Column("airtime_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("planned_until", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("ended_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("replaced_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_schedules_replaced_by_id_schedules", "schedules", ["replaced_by_id"], ["id"]
        )
    op.execute(
        sa.text("UPDATE schedules SET planned_until = :now").bindparams(
            now=datetime.now(UTC).replace(tzinfo=None)
        )
    )
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("device_ids", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("occurrence_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("item_id", sa.String(100), nullable=False, server_default=""))
        batch.add_column(sa.Column("play_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("valid_until", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("content", sa.String(20), nullable=False, server_default="media")
        )
        batch.add_column(sa.Column("relay_url", sa.String(1000), nullable=True))
        batch.add_column(sa.Column("duration_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("corrects_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(), nullable=True))
        batch.create_foreign_key(
            "fk_broadcasts_corrects_id_broadcasts", "broadcasts", ["corrects_id"], ["id"]
        )
        batch.create_unique_constraint("uq_broadcasts_occurrence", ["schedule_id", "occurrence_at"])
        batch.create_index("ix_broadcasts_valid_until", ["valid_until"])
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("preempted_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("status_extra", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("manifest_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("manifest_published_at", sa.DateTime(), nullable=True))
    op.create_table(
        "sequences",
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("stream"),
    )


def downgrade() -> None:
    op.drop_table("sequences")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("manifest_published_at")
        batch.drop_column("manifest_sha256")
        batch.drop_column("status_extra")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("preempted_at")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_index("ix_broadcasts_valid_until")
        batch.drop_constraint("uq_broadcasts_occurrence", type_="unique")
        batch.drop_constraint("fk_broadcasts_corrects_id_broadcasts", type_="foreignkey")
        for column in (
            "cancelled_at",
            "corrects_id",
            "duration_s",
            "relay_url",
            "content",
            "valid_until",
            "play_at",
            "item_id",
            "occurrence_at",
            "device_ids",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("schedules") as batch:
        batch.drop_constraint("fk_schedules_replaced_by_id_schedules", type_="foreignkey")
        for column in (
            "replaced_by_id",
            "ended_at",
            "planned_until",
            "airtime_s",
            "tts_engine",
            "media_sha256",
            "device_ids",
            "valid_to",
            "valid_from",
            "series_key",
            "interval_h",
            "cron",
            "weekdays",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("bulletins") as batch:
        batch.drop_column("duration_s")
        batch.drop_column("relay_url")
