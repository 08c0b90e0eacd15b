"""Fault rules: deterministic failures at SMTP intake stages and local delivery,
with atomic hit counters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 18:23:15.489947
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fault_rule",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("inbox_id", sa.String(length=36), nullable=True),
        sa.Column("match_recipient", sa.String(length=320), nullable=True),
        sa.Column("match_sender", sa.String(length=320), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reply_code", sa.Integer(), nullable=True),
        sa.Column("reply_enhanced", sa.String(length=16), nullable=True),
        sa.Column("reply_text", sa.Text(), nullable=True),
        sa.Column("delay_ms", sa.Integer(), nullable=False),
        sa.Column("times", sa.Integer(), nullable=True),
        sa.Column("probability", sa.Double(), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("evaluations", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inbox.id"],
            name=op.f("fk_fault_rule_inbox_id_inbox"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_fault_rule_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fault_rule")),
    )
    op.create_index(op.f("ix_fault_rule_inbox_id"), "fault_rule", ["inbox_id"], unique=False)
    op.create_index(
        "ix_fault_rule_tenant_created",
        "fault_rule",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_fault_rule_tenant_created", table_name="fault_rule")
    op.drop_index(op.f("ix_fault_rule_inbox_id"), table_name="fault_rule")
    op.drop_table("fault_rule")
