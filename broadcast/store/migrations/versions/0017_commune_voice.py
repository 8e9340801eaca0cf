"""zones.voice: the Piper voice a province or commune chose to be read in

"" is the installation's own engine (espeak-ng unless `LOA_TTS` says otherwise); the voices
themselves are files in the data directory (`loa voice add`, `broadcast.sending.voices`).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.add_column(sa.Column("voice", sa.String(63), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("voice")
