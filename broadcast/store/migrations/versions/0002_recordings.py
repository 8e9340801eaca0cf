"""recordings as content: bulletins.kind, bulletins.recording_sha256, broadcasts.recording_sha256

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulletins") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="tts"))
        batch.add_column(sa.Column("recording_sha256", sa.String(64), nullable=True))
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("recording_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("recording_sha256")
    with op.batch_alter_table("bulletins") as batch:
        batch.drop_column("recording_sha256")
        batch.drop_column("kind")
