"""Plugins in any language (issue 16): per-assignment interval and resource limits; local
plugins, the limits in force and bad protocol lines in the reported state.

``assignments.interval`` (seconds; NULL: the manifest's, then the agent's default) and
``assignments.resources`` (JSON ``{"memory": "128Mi", "cpu": "100m", "disk": ...}``; NULL: the
manifest's). ``plugin_states.local`` (declared in the agent's own config; the server never
removes it), ``plugin_states.limits`` (text: which limits are enforced and how) and
``plugin_states.malformed`` (protocol lines that were not valid messages).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("interval", sa.Double(), nullable=True))
        batch.add_column(sa.Column("resources", sa.JSON(), nullable=True))
    with op.batch_alter_table("plugin_states") as batch:
        # Rows reported before this revision: server-assigned, no limits, nothing malformed.
        batch.add_column(sa.Column("local", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("limits", sa.Text(), nullable=True))
        batch.add_column(sa.Column("malformed", sa.BigInteger(), nullable=False,
                                   server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("plugin_states") as batch:
        batch.drop_column("malformed")
        batch.drop_column("limits")
        batch.drop_column("local")
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("resources")
        batch.drop_column("interval")
