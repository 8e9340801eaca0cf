"""broadcasts.lead_in_sha256: the chime a live broadcast's receivers play before its stream

A live broadcast's PLAY carries the opening chime as a file to play first (receivers keep it
cached from one live broadcast to the next), so its media stays free for the recording; a PLAY
sent again must carry the same chime, so it is kept on the row.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("lead_in_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("lead_in_sha256")
