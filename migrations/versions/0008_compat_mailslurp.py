"""MailSlurp-compatible API: per-inbox description/favourite, uploaded attachments.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compat_inbox",
        sa.Column("inbox_id", sa.String(length=36), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("favourite", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inbox.id"],
            name=op.f("fk_compat_inbox_inbox_id_inbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("inbox_id", name=op.f("pk_compat_inbox")),
    )
    op.create_table(
        "compat_upload",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("content_id", sa.String(length=255), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_compat_upload_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compat_upload")),
    )
    op.create_index("ix_compat_upload_tenant_created", "compat_upload", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_compat_upload_tenant_created", table_name="compat_upload")
    op.drop_table("compat_upload")
    op.drop_table("compat_inbox")
