"""Delivery destination: the remote a delivery connects to, for the per-destination
concurrency limit shared by all workers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 19:12:57.207488
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("delivery", sa.Column("destination", sa.String(length=330), nullable=True))
    op.create_index(op.f("ix_delivery_destination"), "delivery", ["destination"], unique=False)
    op.execute("UPDATE delivery SET destination = 'relay' WHERE route = 'relay'")


def downgrade() -> None:
    op.drop_index(op.f("ix_delivery_destination"), table_name="delivery")
    op.drop_column("delivery", "destination")
