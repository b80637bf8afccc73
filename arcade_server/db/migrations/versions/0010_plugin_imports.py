"""Imported plugin versions: the package index each was imported from.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plugin_imports",
        sa.Column("version_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("index_url", sa.String(1000), nullable=False),
        sa.Column("requirement", sa.String(500), nullable=False),
        sa.Column("imported_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["plugin_versions.id"],
                                name="fk_plugin_imports_version_id_plugin_versions",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", name="pk_plugin_imports"),
    )


def downgrade() -> None:
    op.drop_table("plugin_imports")
