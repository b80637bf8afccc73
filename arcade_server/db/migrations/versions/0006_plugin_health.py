"""Plugin health: what an agent reports beside a plugin's state (issue 14, part "truth").

When the last error happened, the hook calls that failed since the plugin started, its last
successful collect, and a process plugin's child pid and resident memory.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plugin_states") as batch:
        batch.add_column(sa.Column("error_at", sa.Double(), nullable=True))
        # Rows reported before this revision: no failures counted yet.
        batch.add_column(sa.Column("errors", sa.BigInteger(), nullable=False,
                                   server_default=sa.text("0")))
        batch.add_column(sa.Column("last_collect_at", sa.Double(), nullable=True))
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rss", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plugin_states") as batch:
        batch.drop_column("rss")
        batch.drop_column("pid")
        batch.drop_column("last_collect_at")
        batch.drop_column("errors")
        batch.drop_column("error_at")
