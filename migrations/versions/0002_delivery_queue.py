"""Delivery queue: outbound messages with raw bytes apart, per-recipient deliveries
with worker leases, and the append-only delivery event timeline.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 18:07:31.901803
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("inbox_id", sa.String(length=36), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_message_id", sa.String(length=36), nullable=True),
        sa.Column("message_id_header", sa.Text(), nullable=True),
        sa.Column("mail_from", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inbox.id"], name=op.f("fk_outbound_inbox_id_inbox"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_outbound_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound")),
    )
    op.create_index(
        "ix_outbound_inbox_created", "outbound", ["inbox_id", "created_at", "id"], unique=False
    )
    op.create_table(
        "delivery",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("outbound_id", sa.String(length=36), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("route", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_response", sa.JSON(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dsn_sent", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbound_id"],
            ["outbound.id"],
            name=op.f("fk_delivery_outbound_id_outbound"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_delivery_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
    )
    op.create_index("ix_delivery_due", "delivery", ["state", "next_attempt_at"], unique=False)
    op.create_index(op.f("ix_delivery_outbound_id"), "delivery", ["outbound_id"], unique=False)
    op.create_index(op.f("ix_delivery_recipient"), "delivery", ["recipient"], unique=False)
    op.create_index(
        "ix_delivery_tenant_created", "delivery", ["tenant_id", "created_at", "id"], unique=False
    )
    op.create_table(
        "outbound_raw",
        sa.Column("outbound_id", sa.String(length=36), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbound_id"],
            ["outbound.id"],
            name=op.f("fk_outbound_raw_outbound_id_outbound"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("outbound_id", name=op.f("pk_outbound_raw")),
    )
    op.create_table(
        "delivery_event",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("delivery_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("enhanced", sa.String(length=16), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("remote", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["delivery.id"],
            name=op.f("fk_delivery_event_delivery_id_delivery"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_delivery_event")),
    )
    op.create_index(
        "ix_delivery_event_delivery_seq", "delivery_event", ["delivery_id", "seq"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_event_delivery_seq", table_name="delivery_event")
    op.drop_table("delivery_event")
    op.drop_table("outbound_raw")
    op.drop_index("ix_delivery_tenant_created", table_name="delivery")
    op.drop_index(op.f("ix_delivery_recipient"), table_name="delivery")
    op.drop_index(op.f("ix_delivery_outbound_id"), table_name="delivery")
    op.drop_index("ix_delivery_due", table_name="delivery")
    op.drop_table("delivery")
    op.drop_index("ix_outbound_inbox_created", table_name="outbound")
    op.drop_table("outbound")
