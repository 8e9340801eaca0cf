"""What was heard where: broadcast_zones, and deliveries indexed by receiver

A commune's broadcast list, reports and dashboard ask "which broadcasts sounded here": those
aimed at the commune, a zone above or below it, or with a delivery to one of its receivers.
Asked of the JSON `broadcasts.zone_ids`, every page unpacked the list of every broadcast of the
province's history; asked of the deliveries by `broadcast_id`, it probed each broadcast's. Now a
broadcast's zones are rows too (`broadcast_zones`, filled here from the JSON lists, which stay
the record the receivers' commands are made from), and deliveries have an index led by the
receiver: both read only what concerns the zone asked about.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    op.create_index("ix_deliveries_device_broadcast", "deliveries", ["device_id", "broadcast_id"])
    zones = op.create_table(
        "broadcast_zones",
        sa.Column(
            "broadcast_id",
            sa.Integer(),
            sa.ForeignKey("broadcasts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("zone_id", sa.String(63), primary_key=True),
    )
    op.create_index("ix_broadcast_zones_zone", "broadcast_zones", ["zone_id", "broadcast_id"])
    broadcasts = sa.table("broadcasts", sa.column("id", sa.Integer), sa.column("zone_ids", sa.JSON))
    connection = op.get_bind()
    rows: list[dict[str, object]] = []
    for broadcast_id, zone_ids in connection.execute(
        sa.select(broadcasts.c.id, broadcasts.c.zone_ids)
    ):
        listed = zone_ids if isinstance(zone_ids, list) else []
        rows += [
            {"broadcast_id": broadcast_id, "zone_id": zone_id}
            for zone_id in sorted({z for z in listed if isinstance(z, str)})
        ]
        if len(rows) >= BATCH:
            op.bulk_insert(zones, rows)
            rows = []
    if rows:
        op.bulk_insert(zones, rows)


def downgrade() -> None:
    op.drop_index("ix_broadcast_zones_zone", table_name="broadcast_zones")
    op.drop_table("broadcast_zones")
    op.drop_index("ix_deliveries_device_broadcast", table_name="deliveries")
