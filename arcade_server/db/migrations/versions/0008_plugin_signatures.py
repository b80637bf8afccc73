"""Signed plugin versions: one row per signature of a version's statement.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
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
        "plugin_signatures",
        sa.Column("version_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["plugin_versions.id"],
                                name="fk_plugin_signatures_version_id_plugin_versions",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "key_id", name="pk_plugin_signatures"),
    )


def downgrade() -> None:
    op.drop_table("plugin_signatures")
