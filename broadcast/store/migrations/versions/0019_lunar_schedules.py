"""schedules.lunar_days, schedules.lunar_month: schedules by the Vietnamese lunar calendar

A lunar schedule plays on chosen days (1-30) of every lunar month, or of one lunar month (1-12)
every year, at `time_of_day` (`broadcast.programme.rules`). users.calendar_feed_epoch: the
officer's calendar feed link (an HMAC of the account and this number) is revoked by raising it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("lunar_days", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("lunar_month", sa.Integer(), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("calendar_feed_epoch", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("calendar_feed_epoch")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("lunar_month")
        batch.drop_column("lunar_days")
