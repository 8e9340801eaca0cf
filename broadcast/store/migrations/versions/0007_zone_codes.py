"""zones.code: the administrative unit code (mã đơn vị hành chính) of a province or commune

A province's zone tree (province → communes → villages) names provinces and communes by the
codes the state gives them, as the province's own systems and CAP alerts do. Optional and unique
when present (NULL never clashes, on SQLite as on PostgreSQL). Existing zones get NULL: a
single-commune installation keeps working as it was, and `loa zones add --kind province` then
`loa zones move` place its commune under a province.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.add_column(sa.Column("code", sa.String(length=10), nullable=True))
        batch.create_unique_constraint("uq_zones_code", ["code"])


def downgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.drop_constraint("uq_zones_code", type_="unique")
        batch.drop_column("code")
