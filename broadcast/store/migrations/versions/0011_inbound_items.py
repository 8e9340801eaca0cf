"""inbound_items: what an external source-information system posted, by idempotency key

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("disposition", sa.String(20), nullable=False),
        sa.Column("priority", sa.String(20), nullable=True),
        sa.Column("zone_ids", sa.JSON(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("valid_until", sa.DateTime(), nullable=True),
        sa.Column("sent_id", sa.Integer(), nullable=True),
        sa.Column("cap_sender", sa.String(255), nullable=True),
        sa.Column("cap_identifier", sa.String(255), nullable=True),
        sa.Column("replaces_id", sa.Integer(), sa.ForeignKey("inbound_items.id"), nullable=True),
        sa.UniqueConstraint("user_id", "key", name="uq_inbound_items_user_key"),
    )


def downgrade() -> None:
    op.drop_table("inbound_items")
