"""SMTP session transcripts: every intake session and outbound relay attempt, with
its commands and replies, and the inboxes it concerns.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 18:49:49.194053
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "smtp_session",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("client_address", sa.String(length=300), nullable=True),
        sa.Column("server_address", sa.String(length=300), nullable=True),
        sa.Column("helo", sa.Text(), nullable=True),
        sa.Column("tls_version", sa.String(length=32), nullable=True),
        sa.Column("tls_cipher", sa.String(length=100), nullable=True),
        sa.Column("auth_user", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lines", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("submission_ids", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("outbound_id", sa.String(length=36), nullable=True),
        sa.Column("delivery_ids", sa.JSON(none_as_null=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_smtp_session_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smtp_session")),
    )
    op.create_index("ix_smtp_session_started", "smtp_session", ["started_at", "id"], unique=False)
    op.create_index(
        "ix_smtp_session_tenant_started",
        "smtp_session",
        ["tenant_id", "started_at", "id"],
        unique=False,
    )
    op.create_table(
        "smtp_session_inbox",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("inbox_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inbox.id"],
            name=op.f("fk_smtp_session_inbox_inbox_id_inbox"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["smtp_session.id"],
            name=op.f("fk_smtp_session_inbox_session_id_smtp_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "inbox_id", name=op.f("pk_smtp_session_inbox")),
    )
    op.create_index(
        op.f("ix_smtp_session_inbox_inbox_id"), "smtp_session_inbox", ["inbox_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_smtp_session_inbox_inbox_id"), table_name="smtp_session_inbox")
    op.drop_table("smtp_session_inbox")
    op.drop_index("ix_smtp_session_tenant_started", table_name="smtp_session")
    op.drop_index("ix_smtp_session_started", table_name="smtp_session")
    op.drop_table("smtp_session")
