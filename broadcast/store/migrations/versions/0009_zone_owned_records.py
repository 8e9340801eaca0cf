"""bulletins.zone_id and audit_log.zone_id: whose a bulletin is, where an audited action was

With accounts bound to a province, a commune or a village, a bulletin belongs to the zone of the
account that wrote it and an audit entry to the zone of the account that acted. Existing rows
have none: they were made installation-wide, as every account was before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulletins") as batch:
        batch.add_column(sa.Column("zone_id", sa.String(63), nullable=True))
        batch.create_foreign_key("fk_bulletins_zone_id_zones", "zones", ["zone_id"], ["id"])
        batch.create_index("ix_bulletins_zone_id", ["zone_id"])
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("zone_id", sa.String(63), nullable=True))
        batch.create_index("ix_audit_log_zone_id", ["zone_id"])


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_zone_id")
        batch.drop_column("zone_id")
    with op.batch_alter_table("bulletins") as batch:
        batch.drop_index("ix_bulletins_zone_id")
        batch.drop_constraint("fk_bulletins_zone_id_zones", type_="foreignkey")
        batch.drop_column("zone_id")
