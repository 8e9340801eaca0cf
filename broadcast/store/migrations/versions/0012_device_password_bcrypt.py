"""devices.mqtt_password_bcrypt: a bcrypt hash of a receiver's broker password

nats-server (the clustered broker) verifies bcrypt, not the `$7$` hashes mosquitto reads; with
both stored, `loa nats-config` writes a cluster's configs without anyone's clear password.
Existing rows start without one; `loa device refresh` makes it from the password in each
receiver's config file (the password stays).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column("mqtt_password_bcrypt", sa.String(100), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("mqtt_password_bcrypt")
