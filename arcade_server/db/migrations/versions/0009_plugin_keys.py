"""Publish policy: the keys a claimed plugin name accepts new versions signed by.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plugin_keys",
        sa.Column("plugin_name", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("added_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("plugin_name", "key_id", name="pk_plugin_keys"),
    )


def downgrade() -> None:
    op.drop_table("plugin_keys")
