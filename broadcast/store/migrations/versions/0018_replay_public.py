"""Nghe lại: a commune's public replay page and podcast, internal items, listeners' feedback

`zones.replay_public` (a commune opts in: off by default), `bulletins.internal` and
`broadcasts.internal` (nội bộ: kept off the page and the feed), and `feedback` (góp ý: what a
listener wrote about an item, pending until the commune's officer approves or hides it).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.add_column(
            sa.Column("replay_public", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    for table in ("bulletins", "broadcasts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("internal", sa.Boolean(), nullable=False, server_default=sa.false())
            )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "broadcast_id",
            sa.Integer(),
            sa.ForeignKey("broadcasts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("zone_id", sa.String(63), sa.ForeignKey("zones.id"), nullable=False),
        sa.Column("name", sa.String(80), nullable=False, server_default=""),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("client_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("moderated_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("moderated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_feedback_client", "feedback", ["client_key", "created_at"])
    op.create_index("ix_feedback_broadcast", "feedback", ["broadcast_id", "created_at"])
    op.create_index("ix_feedback_zone_status", "feedback", ["zone_id", "status"])


def downgrade() -> None:
    op.drop_table("feedback")
    for table in ("broadcasts", "bulletins"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("internal")
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("replay_public")
