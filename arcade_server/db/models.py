"""The server's tables, as SQLAlchemy 2.0 typed models.

Everything that matters lives here (not in process memory), so several server replicas can
share one database. Times are float seconds since the epoch, like the wire protocol. The
Alembic migrations in ``migrations/versions`` must match these models exactly (a test runs
``compare_metadata``); change both together.

* ``blobs`` — content-addressed wheel files (the bytes live in the blob store).
* ``plugins`` / ``plugin_versions`` / ``plugin_version_wheels`` — the registry: one row per
  published ``name@version``, with its ordered wheel set (plugin wheel first, then the
  dependency wheels in install order).
* ``agents`` / ``agent_labels`` — registered agents; labels are rows so a selector is one
  indexed query. ``desired_revision`` is bumped in the transaction that changes assignments.
* ``assignments`` — the desired state: which version of which plugin an agent should run.
* ``plugin_states`` — the actual state the agent last reported, beside the desired one.
* ``metrics`` — stored metric rows, deleted after the retention period.
* ``jobs`` / ``job_plugins`` — commands run on one agent, with one record per job plugin entry
  (its stage, order, config and outcome). A job's entries point at the plugin version they
  resolved to; deleting that version later leaves the record (``version_id`` becomes NULL).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Agent",
    "AgentLabel",
    "Assignment",
    "Base",
    "Blob",
    "Job",
    "JobPlugin",
    "MetricRow",
    "Plugin",
    "PluginState",
    "PluginVersion",
    "PluginVersionWheel",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT autoincrement primary keys are not auto-increment in SQLite; INTEGER is.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, float: Double}


class Blob(Base):
    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float]


class Plugin(Base):
    __tablename__ = "plugins"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float]
    updated_at: Mapped[float]

    versions: Mapped[list[PluginVersion]] = relationship(
        back_populates="plugin", cascade="all, delete-orphan", passive_deletes=True
    )


class PluginVersion(Base):
    __tablename__ = "plugin_versions"
    __table_args__ = (UniqueConstraint("plugin_name", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    plugin_name: Mapped[str] = mapped_column(
        ForeignKey("plugins.name", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(100), default="", index=True)
    entry_point: Mapped[str] = mapped_column(Text)
    requires_dist: Mapped[list[Any]]
    requires_python: Mapped[str | None] = mapped_column(String(200))
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The plugin wheel's sha256, filename and size (also row 0 of ``wheels``).
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float]

    plugin: Mapped[Plugin] = relationship(back_populates="versions")
    wheels: Mapped[list[PluginVersionWheel]] = relationship(
        order_by="PluginVersionWheel.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class PluginVersionWheel(Base):
    __tablename__ = "plugin_version_wheels"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("plugin_versions.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(300), default="")
    ip: Mapped[str] = mapped_column(String(100), default="")
    os: Mapped[str] = mapped_column(String(100), default="")
    arch: Mapped[str] = mapped_column(String(100), default="")
    agent_version: Mapped[str] = mapped_column(String(100), default="")
    python_version: Mapped[str] = mapped_column(String(100), default="")
    labels: Mapped[dict[str, Any]]
    desired_revision: Mapped[int] = mapped_column(BigInteger, default=0)
    applied_revision: Mapped[int] = mapped_column(BigInteger, default=0)
    metrics_dropped: Mapped[int] = mapped_column(BigInteger, default=0)
    registered_at: Mapped[float]
    connected_at: Mapped[float | None]
    last_seen: Mapped[float | None]


class AgentLabel(Base):
    __tablename__ = "agent_labels"
    __table_args__ = (Index("ix_agent_labels_key_value", "key", "value"),)

    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))


class Assignment(Base):
    __tablename__ = "assignments"

    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    plugin_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: RESTRICT: a version that is assigned cannot be deleted (the API answers 409).
    version_id: Mapped[int] = mapped_column(
        ForeignKey("plugin_versions.id", ondelete="RESTRICT"), index=True
    )
    config: Mapped[dict[str, Any]]
    isolation: Mapped[str] = mapped_column(String(20))
    #: The agent's desired revision when this assignment last changed.
    revision: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float]
    updated_at: Mapped[float]

    version: Mapped[PluginVersion] = relationship(lazy="joined")


class PluginState(Base):
    __tablename__ = "plugin_states"

    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    plugin_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))
    error: Mapped[str] = mapped_column(Text, default="")
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    isolation: Mapped[str] = mapped_column(String(20), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    #: The desired revision the agent was applying when it reported this.
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[float]


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (
        Index("ix_metrics_agent_name_ts", "agent_id", "name", "timestamp"),
        Index("ix_metrics_agent_ts", "agent_id", "timestamp"),
        Index("ix_metrics_timestamp", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    plugin: Mapped[str] = mapped_column(String(200), default="")
    name: Mapped[str] = mapped_column(String(300))
    value: Mapped[float]
    labels: Mapped[dict[str, Any]]
    unit: Mapped[str] = mapped_column(String(50), default="")
    timestamp: Mapped[float]
    received_at: Mapped[float]


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_agent_status", "agent_id", "status"),
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    #: queued | running | succeeded | failed | cancelled | timed_out
    status: Mapped[str] = mapped_column(String(20))
    commands: Mapped[list[Any]]
    env: Mapped[dict[str, Any]]
    #: Seconds the commands may run (the agent kills them after that).
    timeout: Mapped[float]
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text, default="")
    output_tail: Mapped[str] = mapped_column(Text, default="")
    #: Bytes of output the commands produced in all (``output_tail`` is the end of it).
    output_size: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[float]
    #: When the job was last handed to an open stream of its agent (NULL: never yet).
    dispatched_at: Mapped[float | None]
    started_at: Mapped[float | None]
    finished_at: Mapped[float | None]
    cancel_requested_at: Mapped[float | None]
    updated_at: Mapped[float]

    plugins: Mapped[list[JobPlugin]] = relationship(
        order_by="JobPlugin.position", cascade="all, delete-orphan", passive_deletes=True
    )


class JobPlugin(Base):
    __tablename__ = "job_plugins"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    #: The entry's index in the job's plugin list.
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    plugin_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    #: SET NULL: a published version may be deleted after jobs used it.
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("plugin_versions.id", ondelete="SET NULL"), index=True
    )
    #: before | after | on_success | on_failure | notify
    stage: Mapped[str] = mapped_column(String(20))
    stage_order: Mapped[int] = mapped_column(Integer, default=0)
    config: Mapped[dict[str, Any]]
    isolation: Mapped[str] = mapped_column(String(20))
    #: pending | running | succeeded | failed | skipped
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[float | None]
    completed_at: Mapped[float | None]
