"""devices.mqtt_client_token: the secret end of a receiver's MQTT client id

Existing rows start without one (client id = device id, as their configs say); `loa device
refresh` gives each a token and writes `<device id>-<token>` into its config.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column("mqtt_client_token", sa.String(64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("mqtt_client_token")
