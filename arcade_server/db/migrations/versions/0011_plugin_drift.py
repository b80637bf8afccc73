"""Drift detection: what an agent found changed in a plugin's installed files (issue 15, part
"drift").

The paths that last drifted (a JSON list, NULL: never) and when the agent found them; kept
after the agent repaired the environment, so the event stays visible.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plugin_states") as batch:
        batch.add_column(sa.Column("drift", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("drift_at", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plugin_states") as batch:
        batch.drop_column("drift_at")
        batch.drop_column("drift")
