"""devices.manifest_seq: the number of the last manifest published to each receiver

A receiver reports the number of the manifest it holds; one that still reports an older one
well after a newer was published (a broker that dropped the message while its subscription was
being made, a link that lost it) is sent the latest again (`manifests.lagging`).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("manifest_seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("manifest_seq")
