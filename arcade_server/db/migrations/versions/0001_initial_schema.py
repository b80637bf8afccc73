"""Initial schema: registry, agents, desired and actual state, metrics.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=300), nullable=False),
        sa.Column("ip", sa.String(length=100), nullable=False),
        sa.Column("os", sa.String(length=100), nullable=False),
        sa.Column("arch", sa.String(length=100), nullable=False),
        sa.Column("agent_version", sa.String(length=100), nullable=False),
        sa.Column("python_version", sa.String(length=100), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("desired_revision", sa.BigInteger(), nullable=False),
        sa.Column("applied_revision", sa.BigInteger(), nullable=False),
        sa.Column("metrics_dropped", sa.BigInteger(), nullable=False),
        sa.Column("registered_at", sa.Double(), nullable=False),
        sa.Column("connected_at", sa.Double(), nullable=True),
        sa.Column("last_seen", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    op.create_table(
        "plugins",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_plugins")),
    )
    op.create_table(
        "agent_labels",
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"],
            name=op.f("fk_agent_labels_agent_id_agents"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "key", name=op.f("pk_agent_labels")),
    )
    op.create_index("ix_agent_labels_key_value", "agent_labels", ["key", "value"])
    op.create_table(
        "metrics",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("plugin", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("unit", sa.String(length=50), nullable=False),
        sa.Column("timestamp", sa.Double(), nullable=False),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"],
            name=op.f("fk_metrics_agent_id_agents"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics")),
    )
    op.create_index("ix_metrics_agent_name_ts", "metrics", ["agent_id", "name", "timestamp"])
    op.create_index("ix_metrics_agent_ts", "metrics", ["agent_id", "timestamp"])
    op.create_index("ix_metrics_timestamp", "metrics", ["timestamp"])
    op.create_table(
        "plugin_states",
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("plugin_name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("isolation", sa.String(length=20), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"],
            name=op.f("fk_plugin_states_agent_id_agents"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "plugin_name", name=op.f("pk_plugin_states")),
    )
    op.create_table(
        "plugin_versions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("plugin_name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("entry_point", sa.Text(), nullable=False),
        sa.Column("requires_dist", sa.JSON(), nullable=False),
        sa.Column("requires_python", sa.String(length=200), nullable=True),
        sa.Column("manifest", sa.JSON(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plugin_name"], ["plugins.name"],
            name=op.f("fk_plugin_versions_plugin_name_plugins"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_versions")),
        sa.UniqueConstraint(
            "plugin_name", "version", name=op.f("uq_plugin_versions_plugin_name")
        ),
    )
    op.create_index(op.f("ix_plugin_versions_plugin_name"), "plugin_versions", ["plugin_name"])
    op.create_index(op.f("ix_plugin_versions_type"), "plugin_versions", ["type"])
    op.create_table(
        "assignments",
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("plugin_name", sa.String(length=200), nullable=False),
        sa.Column("version_id", BIG_ID, nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("isolation", sa.String(length=20), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"],
            name=op.f("fk_assignments_agent_id_agents"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["plugin_versions.id"],
            name=op.f("fk_assignments_version_id_plugin_versions"), ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("agent_id", "plugin_name", name=op.f("pk_assignments")),
    )
    op.create_index(op.f("ix_assignments_version_id"), "assignments", ["version_id"])
    op.create_table(
        "plugin_version_wheels",
        sa.Column("version_id", BIG_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["blobs.sha256"], name=op.f("fk_plugin_version_wheels_sha256_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["plugin_versions.id"],
            name=op.f("fk_plugin_version_wheels_version_id_plugin_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "position", name=op.f("pk_plugin_version_wheels")),
    )
    op.create_index(
        op.f("ix_plugin_version_wheels_sha256"), "plugin_version_wheels", ["sha256"]
    )


def downgrade() -> None:
    op.drop_table("plugin_version_wheels")
    op.drop_table("assignments")
    op.drop_table("plugin_versions")
    op.drop_table("plugin_states")
    op.drop_table("metrics")
    op.drop_table("agent_labels")
    op.drop_table("plugins")
    op.drop_table("blobs")
    op.drop_table("agents")
