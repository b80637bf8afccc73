"""The server's tables, as SQLAlchemy Core :class:`~sqlalchemy.Table` objects.

Everything that matters lives here (not in process memory), so several server replicas can
share one database. Times are float seconds since the epoch, like the wire protocol. The
Alembic migrations in ``migrations/versions`` must match these tables exactly (a test runs
``compare_metadata``); change both together.

Core, not the ORM: the service functions speak SQL statements and read rows, which is all
they need, and a server that never imports :mod:`sqlalchemy.orm` is ~7 MB smaller for its
whole life (the ORM's code and mapper configuration; measured with every other server import
already loaded), with no per-row identity map or unit of work in the hot paths.

* ``blobs`` — content-addressed wheel files (the bytes live in the blob store).
* ``plugins`` / ``plugin_versions`` / ``plugin_version_wheels`` — the registry: one row per
  published ``name@version``, with its ordered wheel set (plugin wheel first, then the
  dependency wheels in install order).
* ``agents`` / ``agent_labels`` — registered agents; labels are rows so a selector is one
  indexed query. ``desired_revision`` is bumped in the transaction that changes assignments.
* ``assignments`` — the desired state: which version of which plugin an agent should run.
* ``plugin_signatures`` — signatures of a version's statement (:mod:`arcade_core.signing`):
  the signer's key id and raw public key (so the server can check a signature before storing
  it and show who signed), and the 64 signature bytes. Agents trust keys of their own config,
  never these public keys.
* ``plugin_imports`` — the package index a version was imported from (``POST
  /plugins/import``) and the requirement asked for, so ``GET /plugins/{name}/updates``
  knows where to look. Uploaded versions have no row.
* ``plugin_keys`` — the publish policy's claims: the keys a plugin name accepts new versions
  signed by (the first signed publish of a name claims it; an admin changes them). Keyed by
  name, not a foreign key to ``plugins``: a claim outlives deleting every version, and an
  admin may claim a name before anything is published under it.
* ``plugin_states`` — the actual state the agent last reported, beside the desired one.
* ``metrics`` — stored metric rows, deleted after the retention period.
* ``jobs`` / ``job_plugins`` — commands run on one agent, with one record per job plugin entry
  (its stage, order, config and outcome). A job's entries point at the plugin version they
  resolved to; deleting that version later leaves the record (``version_id`` becomes NULL).
* ``api_tokens`` — operator tokens: a name, a role and the sha256 of the secret (never the
  secret itself); revoked and expired rows stay, so the audit log's names keep a meaning.
* ``audit_log`` — one row per mutating REST call (refused ones too) and per enrollment or
  revocation: who, from where, what, on what, with which outcome. Never updated.
* ``enrollment_tokens`` — secrets an agent exchanges for its certificate (only their sha256
  is stored), with the labels they bind, an expiry and a use count.
* ``agent_identities`` — one per enrolled agent id: the serials of its valid certificates
  (the current one and the one it renewed from), the labels bound at enrollment, revocation.
  No foreign key to ``agents``: an agent enrolls before it first registers.

The shared metadata and column helpers are in :mod:`.columns`; the identity and access tables
(the last four above) in :mod:`.access_tables`, re-exported here.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from .access_tables import agent_identities, api_tokens, audit_log, enrollment_tokens
from .columns import AnyRow, BigId, metadata
from .columns import optional as _optional
from .columns import required as _column

__all__ = [
    "AnyRow",
    "agent_identities",
    "agent_labels",
    "agents",
    "api_tokens",
    "assignments",
    "audit_log",
    "blobs",
    "enrollment_tokens",
    "job_plugins",
    "jobs",
    "metadata",
    "metrics",
    "plugin_imports",
    "plugin_keys",
    "plugin_signatures",
    "plugin_states",
    "plugin_version_wheels",
    "plugin_versions",
    "plugins",
]

blobs = Table(
    "blobs", metadata,
    Column("sha256", String(64), primary_key=True),
    _column("size", BigInteger),
    _column("created_at", Double),
)

plugins = Table(
    "plugins", metadata,
    Column("name", String(200), primary_key=True),
    _column("enabled", Boolean, default=True),
    _column("created_at", Double),
    _column("updated_at", Double),
)

plugin_versions = Table(
    "plugin_versions", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _column("plugin_name", String(200), ForeignKey("plugins.name", ondelete="CASCADE"),
            index=True),
    _column("version", String(100)),
    _column("summary", Text, default=""),
    _column("description", Text, default=""),
    _column("type", String(100), default="", index=True),
    _column("entry_point", Text),
    _column("requires_dist", JSON),
    _optional("requires_python", String(200)),
    _optional("manifest", JSON),
    # The plugin wheel's sha256, filename and size (also row 0 of plugin_version_wheels).
    _column("sha256", String(64)),
    _column("filename", String(300)),
    _column("size", BigInteger),
    _column("created_at", Double),
    UniqueConstraint("plugin_name", "version"),
)

plugin_version_wheels = Table(
    "plugin_version_wheels", metadata,
    Column("version_id", BigId, ForeignKey("plugin_versions.id", ondelete="CASCADE"),
           primary_key=True),
    Column("position", Integer, primary_key=True),
    _column("sha256", String(64), ForeignKey("blobs.sha256"), index=True),
    _column("filename", String(300)),
    _column("name", String(200)),
    _column("version", String(100)),
    _column("size", BigInteger),
)

plugin_signatures = Table(
    "plugin_signatures", metadata,
    Column("version_id", BigId, ForeignKey("plugin_versions.id", ondelete="CASCADE"),
           primary_key=True),
    Column("key_id", String(16), primary_key=True),
    _column("public_key", LargeBinary(32)),
    _column("signature", LargeBinary(64)),
    _column("created_at", Double),
)

plugin_imports = Table(
    "plugin_imports", metadata,
    Column("version_id", BigId, ForeignKey("plugin_versions.id", ondelete="CASCADE"),
           primary_key=True),
    _column("index_url", String(1000)),
    _column("requirement", String(500)),
    _column("imported_at", Double),
)

plugin_keys = Table(
    "plugin_keys", metadata,
    Column("plugin_name", String(200), primary_key=True),
    Column("key_id", String(16), primary_key=True),
    _column("public_key", LargeBinary(32)),
    _column("added_at", Double),
)

agents = Table(
    "agents", metadata,
    Column("id", String(200), primary_key=True),
    _column("hostname", String(300), default=""),
    _column("ip", String(100), default=""),
    _column("os", String(100), default=""),
    _column("arch", String(100), default=""),
    _column("agent_version", String(100), default=""),
    _column("python_version", String(100), default=""),
    _column("labels", JSON),
    _column("desired_revision", BigInteger, default=0),
    _column("applied_revision", BigInteger, default=0),
    _column("metrics_dropped", BigInteger, default=0),
    # The agent's own [jobs] policy, as it said at its last Register (jobs opt-in).
    _column("jobs_enabled", Boolean, default=False),
    _column("jobs_allow", JSON, default=list),
    _column("registered_at", Double),
    _optional("connected_at", Double),
    _optional("last_seen", Double),
    # When its last stream closed (offline from then until last_seen is newer): views part.
    _optional("disconnected_at", Double),
)

agent_labels = Table(
    "agent_labels", metadata,
    Column("agent_id", String(200), ForeignKey("agents.id", ondelete="CASCADE"),
           primary_key=True),
    Column("key", String(200), primary_key=True),
    _column("value", String(500)),
    Index("ix_agent_labels_key_value", "key", "value"),
)

assignments = Table(
    "assignments", metadata,
    Column("agent_id", String(200), ForeignKey("agents.id", ondelete="CASCADE"),
           primary_key=True),
    Column("plugin_name", String(200), primary_key=True),
    # RESTRICT: a version that is assigned cannot be deleted (the API answers 409).
    _column("version_id", BigId, ForeignKey("plugin_versions.id", ondelete="RESTRICT"),
            index=True),
    _column("config", JSON),
    _column("isolation", String(20)),
    # The agent's desired revision when this assignment last changed.
    _column("revision", BigInteger),
    _column("created_at", Double),
    _column("updated_at", Double),
    # Per assignment (0012): the collect/push interval in seconds (NULL: the manifest's, then
    # the agent's default) and resource limits overriding the manifest's ({"memory": "128Mi",
    # "cpu": "100m", "disk": ...}; NULL: the manifest's).
    _optional("interval", Double),
    _optional("resources", JSON),
)

plugin_states = Table(
    "plugin_states", metadata,
    Column("agent_id", String(200), ForeignKey("agents.id", ondelete="CASCADE"),
           primary_key=True),
    Column("plugin_name", String(200), primary_key=True),
    _column("version", String(100)),
    _column("state", String(20)),
    _column("error", Text, default=""),
    _column("restarts", Integer, default=0),
    _column("isolation", String(20), default=""),
    _column("sha256", String(64), default=""),
    # The desired revision the agent was applying when it reported this.
    _column("revision", BigInteger, default=0),
    _column("updated_at", Double),
    # Health (0006): when the error happened, hook failures since the plugin started, its
    # last successful collect, and a process plugin's child pid and resident bytes.
    _optional("error_at", Double),
    _column("errors", BigInteger, default=0),
    _optional("last_collect_at", Double),
    _optional("pid", Integer),
    _optional("rss", BigInteger),
    # Drift (0011): the installed files that last differed from their RECORD hashes (a JSON
    # list of "<path> (changed|added|missing)", at most 21) and when the agent found them.
    _optional("drift", JSON),
    _optional("drift_at", Double),
    # 0012: declared in the agent's own config (never removed by the server), the limits in
    # force and how ("memory 128Mi: cgroup; cpu 100m: measured"), bad protocol lines.
    _column("local", Boolean, default=False),
    _optional("limits", Text),
    _column("malformed", BigInteger, default=0),
)

metrics = Table(
    "metrics", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _column("agent_id", String(200), ForeignKey("agents.id", ondelete="CASCADE")),
    _column("plugin", String(200), default=""),
    _column("name", String(300)),
    _column("value", Double),
    _column("labels", JSON),
    _column("unit", String(50), default=""),
    _column("timestamp", Double),
    _column("received_at", Double),
    Index("ix_metrics_agent_name_ts", "agent_id", "name", "timestamp"),
    Index("ix_metrics_agent_ts", "agent_id", "timestamp"),
    Index("ix_metrics_timestamp", "timestamp"),
)

jobs = Table(
    "jobs", metadata,
    Column("id", String(64), primary_key=True),
    _column("agent_id", String(200), ForeignKey("agents.id", ondelete="CASCADE")),
    # queued | running | succeeded | failed | cancelled | timed_out
    _column("status", String(20)),
    _column("commands", JSON),
    _column("env", JSON),
    # Seconds the commands may run (the agent kills them after that).
    _column("timeout", Double),
    _optional("exit_code", Integer),
    _column("error", Text, default=""),
    _column("output_tail", Text, default=""),
    # Bytes of output the commands produced in all (output_tail is the end of it).
    _column("output_size", BigInteger, default=0),
    _column("created_at", Double),
    # When the job was last handed to an open stream of its agent (NULL: never yet).
    _optional("dispatched_at", Double),
    _optional("started_at", Double),
    _optional("finished_at", Double),
    _optional("cancel_requested_at", Double),
    _column("updated_at", Double),
    Index("ix_jobs_agent_status", "agent_id", "status"),
    Index("ix_jobs_status", "status"),
    Index("ix_jobs_created_at", "created_at"),
)

job_plugins = Table(
    "job_plugins", metadata,
    Column("job_id", String(64), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    # The entry's index in the job's plugin list.
    Column("position", Integer, primary_key=True),
    _column("plugin_name", String(200)),
    _column("version", String(100)),
    # SET NULL: a published version may be deleted after jobs used it.
    _optional("version_id", BigId, ForeignKey("plugin_versions.id", ondelete="SET NULL"),
              index=True),
    # before | after | on_success | on_failure | notify
    _column("stage", String(20)),
    _column("stage_order", Integer, default=0),
    _column("config", JSON),
    _column("isolation", String(20)),
    # pending | running | succeeded | failed | skipped
    _column("status", String(20)),
    _optional("result", JSON),
    _column("error", Text, default=""),
    _optional("started_at", Double),
    _optional("completed_at", Double),
)
