"""devices.broker_zones: the zones the broker's access list last let each receiver hear

Written whenever Loa writes the broker's access list (`loa mqtt-config`, the embedded broker's
access file), so the server can tell a receiver registered in zones the broker does not yet
allow it (mosquitto grants such a subscription and drops its messages). Existing rows get
NULL: unknown until the list is written again, and never an alarm.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("broker_zones", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("broker_zones")
