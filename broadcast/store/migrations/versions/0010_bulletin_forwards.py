"""bulletin_forwards: province bulletins sent down to communes, and each commune's decision

Thông tư 39/2020/TT-BTTTT: a province bulletin waits in the commune's inbox (normal), heads its
next programme run (priority) or plays at once (emergency); the province reads per commune
whether it was received, placed, declined (why) or played.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulletin_forwards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bulletin_id", sa.Integer(), sa.ForeignKey("bulletins.id"), nullable=False),
        sa.Column("commune_id", sa.String(63), sa.ForeignKey("zones.id"), nullable=False),
        sa.Column("priority", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("schedule_id", sa.Integer(), sa.ForeignKey("schedules.id"), nullable=True),
        sa.Column("broadcast_id", sa.Integer(), sa.ForeignKey("broadcasts.id"), nullable=True),
        sa.Column("run_at", sa.DateTime(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("sent_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("played_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("bulletin_id", "commune_id", name="uq_bulletin_forwards_commune"),
    )
    op.create_index("ix_bulletin_forwards_bulletin_id", "bulletin_forwards", ["bulletin_id"])
    op.create_index("ix_bulletin_forwards_commune_id", "bulletin_forwards", ["commune_id"])


def downgrade() -> None:
    op.drop_index("ix_bulletin_forwards_commune_id", "bulletin_forwards")
    op.drop_index("ix_bulletin_forwards_bulletin_id", "bulletin_forwards")
    op.drop_table("bulletin_forwards")
