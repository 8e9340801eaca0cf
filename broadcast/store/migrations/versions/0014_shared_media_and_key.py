"""media, installation: media bytes in the database, the fleet's signing key fingerprint

Two servers on one PostgreSQL (as on two hosts) must each serve every MP3 receivers ask for,
without shared storage: `media` keeps the bytes under their sha256, written once, and each
server's media directory is a read-through cache of it (`broadcast.store.media`). SQLite
installations keep media on files only; the table stays empty there.

`installation` holds facts every server of the database must agree on: `signing_key`, the
public key commands are signed with (recorded at first start, replaced by `loa keys rotate`),
which `loa doctor` compares with the node's own key file.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "installation",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(500), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("installation")
    op.drop_table("media")
