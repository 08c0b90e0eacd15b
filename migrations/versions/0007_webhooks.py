"""Webhooks: endpoints, their queued calls, each attempt, and the fan-out cursor.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 21:27:21.792859
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_seq", sa.BigInteger(), nullable=False),
        sa.Column("delivery_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_cursor")),
    )
    op.create_table(
        "webhook",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("inbox_id", sa.String(length=36), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("payload_format", sa.String(length=32), nullable=False),
        sa.Column("from_message_seq", sa.BigInteger(), nullable=False),
        sa.Column("from_delivery_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inbox.id"], name=op.f("fk_webhook_inbox_id_inbox"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_webhook_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook")),
    )
    op.create_index(op.f("ix_webhook_inbox_id"), "webhook", ["inbox_id"], unique=False)
    op.create_index(
        "ix_webhook_tenant_created", "webhook", ["tenant_id", "created_at", "id"], unique=False
    )
    op.create_table(
        "webhook_call",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("webhook_id", sa.String(length=36), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhook.id"],
            name=op.f("fk_webhook_call_webhook_id_webhook"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_call")),
    )
    op.create_index(
        "ix_webhook_call_due", "webhook_call", ["state", "next_attempt_at"], unique=False
    )
    op.create_index(
        "ix_webhook_call_webhook_created",
        "webhook_call",
        ["webhook_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "webhook_attempt",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["webhook_call.id"],
            name=op.f("fk_webhook_attempt_call_id_webhook_call"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_webhook_attempt")),
    )
    op.create_index(
        "ix_webhook_attempt_call_seq", "webhook_attempt", ["call_id", "seq"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_attempt_call_seq", table_name="webhook_attempt")
    op.drop_table("webhook_attempt")
    op.drop_index("ix_webhook_call_webhook_created", table_name="webhook_call")
    op.drop_index("ix_webhook_call_due", table_name="webhook_call")
    op.drop_table("webhook_call")
    op.drop_index("ix_webhook_tenant_created", table_name="webhook")
    op.drop_index(op.f("ix_webhook_inbox_id"), table_name="webhook")
    op.drop_table("webhook")
    op.drop_table("webhook_cursor")
