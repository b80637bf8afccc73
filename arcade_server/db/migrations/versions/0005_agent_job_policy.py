"""Jobs opt-in: each agent's own job policy (``[jobs] enabled`` and ``allow``) as it registered.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Agents registered before this revision run no jobs until they register again and say so.
    op.add_column("agents", sa.Column("jobs_enabled", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.add_column("agents", sa.Column("jobs_allow", sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("jobs_allow")
        batch.drop_column("jobs_enabled")
