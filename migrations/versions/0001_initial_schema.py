"""Initial schema: tenants, inboxes with tags, messages with raw bytes apart.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 17:57:37.660268
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

DEFAULT_TENANT_ID = "00000000-0000-0000-0000-000000000000"


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant")),
    )
    op.create_table(
        "inbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name=op.f("fk_inbox_tenant_id_tenant"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("address", name=op.f("uq_inbox_address")),
    )
    op.bulk_insert(
        sa.table(
            "tenant",
            sa.column("id", sa.String),
            sa.column("name", sa.String),
            sa.column("created_at", sa.DateTime(timezone=True)),
        ),
        [{"id": DEFAULT_TENANT_ID, "name": "default", "created_at": datetime.now(UTC)}],
    )
    op.create_index(op.f("ix_inbox_expires_at"), "inbox", ["expires_at"], unique=False)
    op.create_index(
        "ix_inbox_tenant_created", "inbox", ["tenant_id", "created_at", "id"], unique=False
    )
    op.create_table(
        "inbox_tag",
        sa.Column("inbox_id", sa.String(length=36), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inbox.id"], name=op.f("fk_inbox_tag_inbox_id_inbox"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("inbox_id", "tag", name=op.f("pk_inbox_tag")),
    )
    op.create_index(op.f("ix_inbox_tag_tag"), "inbox_tag", ["tag"], unique=False)
    op.create_table(
        "message",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("inbox_id", sa.String(length=36), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("message_id_header", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("from_name", sa.Text(), nullable=True),
        sa.Column("from_address", sa.Text(), nullable=True),
        sa.Column("to", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen", sa.Boolean(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("has_attachments", sa.Boolean(), nullable=False),
        sa.Column("parse_error", sa.Text(), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inbox.id"], name=op.f("fk_message_inbox_id_inbox"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_message_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_message")),
        sa.UniqueConstraint("id", name=op.f("uq_message_id")),
    )
    op.create_index("ix_message_inbox_seq", "message", ["inbox_id", "seq"], unique=False)
    op.create_index(op.f("ix_message_submission_id"), "message", ["submission_id"], unique=False)
    op.create_index("ix_message_tenant_seq", "message", ["tenant_id", "seq"], unique=False)
    op.create_table(
        "message_raw",
        sa.Column(
            "message_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_seq"],
            ["message.seq"],
            name=op.f("fk_message_raw_message_seq_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_seq", name=op.f("pk_message_raw")),
    )


def downgrade() -> None:
    op.drop_table("message_raw")
    op.drop_index("ix_message_tenant_seq", table_name="message")
    op.drop_index(op.f("ix_message_submission_id"), table_name="message")
    op.drop_index("ix_message_inbox_seq", table_name="message")
    op.drop_table("message")
    op.drop_index(op.f("ix_inbox_tag_tag"), table_name="inbox_tag")
    op.drop_table("inbox_tag")
    op.drop_index("ix_inbox_tenant_created", table_name="inbox")
    op.drop_index(op.f("ix_inbox_expires_at"), table_name="inbox")
    op.drop_table("inbox")
    op.drop_table("tenant")
