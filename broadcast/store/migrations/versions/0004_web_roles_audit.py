"""web app: bulletin approval, audit log, login attempts, device presence, user locale

Bulletins made before approval existed count as approved: they were already schedulable.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("locale", sa.String(10), nullable=True))
    with op.batch_alter_table("bulletins") as batch:
        batch.add_column(sa.Column("status", sa.String(20), nullable=False, server_default="draft"))
        batch.add_column(
            sa.Column("source_name", sa.String(300), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("submitted_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("reviewed_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("review_comment", sa.Text(), nullable=False, server_default=""))
        batch.create_foreign_key(
            "fk_bulletins_reviewed_by_id_users", "users", ["reviewed_by_id"], ["id"]
        )
    op.execute("UPDATE bulletins SET status = 'approved'")
    op.create_table(
        "device_presence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(63), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_device_presence_device_id", "device_presence", ["device_id"])
    op.create_index("ix_device_presence_at", "device_presence", ["at"])
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("username", sa.String(80), nullable=False),
        sa.Column("remote_addr", sa.String(100), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_login_attempts_at", "login_attempts", ["at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(80), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_at", "audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_login_attempts_at", "login_attempts")
    op.drop_table("login_attempts")
    op.drop_index("ix_device_presence_at", "device_presence")
    op.drop_index("ix_device_presence_device_id", "device_presence")
    op.drop_table("device_presence")
    with op.batch_alter_table("bulletins") as batch:
        batch.drop_constraint("fk_bulletins_reviewed_by_id_users", type_="foreignkey")
        for column in (
            "review_comment",
            "reviewed_at",
            "reviewed_by_id",
            "submitted_at",
            "updated_at",
            "source_name",
            "status",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locale")
