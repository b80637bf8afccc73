"""The server's settings: one :class:`Settings` object, built once at start.

Precedence, highest first: explicit overrides (the ``arcade server`` flags), ``ARCADE_SERVER_*``
environment variables, a TOML config file (``--config FILE`` or ``$ARCADE_SERVER_CONFIG``; keys
at the top level or under ``[server]``), then the defaults below. Durations accept seconds or a
suffix (``30s``, ``5m``, ``2h``, ``7d``); sizes accept bytes or a suffix (``512KiB``, ``256MiB``).
Everything is validated here, so a typo fails at start with a message naming the setting.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import limits
from ._settings_transport import transport_values
from ._settings_values import (
    KIB,
    MIB,
    default_home,
    duration_value,
    integer_value,
    is_loopback,
    number_value,
    read_config,
    size_value,
)
from .errors import SettingsError
from .package_index import index_settings

__all__ = ["ENV_PREFIX", "Settings", "default_home", "is_loopback"]

ENV_PREFIX = "ARCADE_SERVER_"
MIN_CHUNK = 256 * KIB
MAX_CHUNK = 1 * MIB

_DURATIONS = {
    "heartbeat_interval", "offline_after", "metric_retention", "retention_interval",
    "presence_flush_interval", "revision_poll_interval", "wait_poll_interval", "max_wait",
    "shutdown_grace", "job_sweep_interval", "job_lost_after", "job_timeout_grace",
    "logs_timeout", "register_timeout",
    "job_default_timeout", "job_max_timeout", "memory_release_interval",
    "metric_warn_interval", "audit_retention", "job_retention", "import_timeout",
}
_SIZES = {"max_upload_bytes", "chunk_size", "max_config_bytes", "max_wheel_bytes",
          "grpc_max_receive_bytes"}
_INTEGERS = {"http_port", "grpc_port", "db_threads", "metric_query_limit",
             "max_plugins_per_agent", "metric_batch_max", "metric_rows_per_plugin",
             "audit_max_rows", "job_max_rows"}
_FLOATS = {"metric_rate", "metric_burst"}


@dataclass(frozen=True)
class Settings:
    """Everything the server process needs to know, validated.

    ``database_url`` defaults to a SQLite file in ``home``; ``postgresql://`` URLs are given
    the psycopg (v3) driver. Intervals are seconds.
    """

    home: Path = field(default_factory=default_home)
    http_port: int = 8080
    grpc_port: int = 9090
    database_url: str = ""
    #: Largest accepted publish request (all wheels together); larger → 413.
    max_upload_bytes: int = 256 * MIB
    #: Heartbeat interval told to agents in Welcome.
    heartbeat_interval: float = 10.0
    #: An agent without a heartbeat for this long is shown offline (a half-open connection);
    #: 0 (the default): three heartbeat intervals. A closed stream is offline at once.
    offline_after: float = 0.0
    #: Metric rows older than this are deleted.
    metric_retention: float = 7 * 86400.0
    #: How often the retention sweep runs.
    retention_interval: float = 600.0
    #: How often in-memory "last seen" times are written to the database.
    presence_flush_interval: float = 5.0
    #: Fallback sweep that pushes desired states changed by another replica and ends the
    #: streams of agents revoked there.
    revision_poll_interval: float = 5.0
    #: ``?wait=`` re-reads the database this often for agents not connected to this process
    #: (so it works across replicas; reports of agents connected here wake it at once).
    wait_poll_interval: float = 1.0
    #: Longest ``?wait=`` a request may ask for.
    max_wait: float = 300.0
    #: DownloadWheel chunk size (256 KiB - 1 MiB).
    chunk_size: int = 512 * KIB
    #: Threads for database work (service functions run there, never on the event loop).
    db_threads: int = 8
    #: Once a burst of agent traffic (a rollout, a reconnect storm) has been quiet this long,
    #: the memory it freed is handed back to the operating system.
    memory_release_interval: float = 5.0
    #: Largest ``limit`` for metric queries.
    metric_query_limit: int = 10_000
    #: Seconds given to open requests and streams at shutdown.
    shutdown_grace: float = 5.0
    #: How often running jobs are checked for lost agents (and queued ones sent, see jobs).
    job_sweep_interval: float = 5.0
    #: A running job whose agent has not been seen for this long ends ``failed``.
    job_lost_after: float = 60.0
    #: A running job not reported finished by its timeout plus this ends ``failed``.
    job_timeout_grace: float = 300.0
    #: A job's timeout when its request gives none; and the largest one a request may give.
    job_default_timeout: float = 3600.0
    job_max_timeout: float = 7 * 86400.0
    log_level: str = "info"
    # -- operators: API tokens and the audit log ("tokens" part) -----------------------
    #: The secret of the admin token made on first start with an empty database (random when
    #: empty); written to ``<home>/admin-token`` either way. Never shown in a repr or log.
    admin_token: str = field(default="", repr=False)
    # ---- Transport and agent identity (part "tls"): bind addresses, certificates, enrollment
    #: Where REST listens. Plain HTTP on loopback only; beyond it, HTTPS with the server
    #: certificate (``http_tls``).
    http_host: str = "127.0.0.1"
    #: Where gRPC listens (always TLS; Connect and DownloadWheel need an agent certificate).
    grpc_host: str = "127.0.0.1"
    #: Extra names (DNS names or IP addresses) of the server certificate; loopback and the
    #: bind hosts are always in it. A comma-separated string in the environment.
    san: tuple[str, ...] = ()
    #: ``auto``: HTTPS whenever ``http_host`` is not loopback; ``on``: always; ``off``: never
    #: (refused beyond loopback).
    http_tls: str = "auto"
    #: An operator's CA (certificate + key) instead of the one created in ``<home>/tls``.
    tls_ca_file: Path | None = None
    tls_ca_key_file: Path | None = None
    #: An operator's server certificate + key (signed by the CA in use), used as is.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: Lifetime of the certificates issued to agents (they renew at 2/3 of it).
    agent_cert_days: float = 30.0

    # -- limits on input (issue 13, "limits"): see arcade_server/limits.py for the arithmetic.
    #: Largest plugin config, as canonical JSON (install, config update, job plugin entries);
    #: larger → 413.
    max_config_bytes: int = 64 * KIB
    #: Most plugins assigned to one agent; one more → 409. With ``max_config_bytes`` this
    #: bounds an agent's desired state: ``max_plugins_per_agent`` × (``max_config_bytes`` +
    #: 80,000) + 64 bytes must fit the 16 MiB the server sends and the agent accepts
    #: (defaults: 64 × 145,536 + 64 = 9,314,368 bytes), checked at start.
    max_plugins_per_agent: int = 64
    #: Largest single wheel of a publish (besides ``max_upload_bytes`` for all of them); → 413.
    max_wheel_bytes: int = 100 * MIB
    #: Largest message an agent may send on gRPC (a Register, a status report, a metric
    #: batch, a job event); larger → ``RESOURCE_EXHAUSTED`` for that call. The largest
    #: legitimate one is a metric batch of ``metric_batch_max`` metrics (~0.5 KiB each at their
    #: longest fields) or a status report of ``max_plugins_per_agent`` plugins (≤ 8.5 KiB each).
    grpc_max_receive_bytes: int = 4 * MIB
    #: Metrics stored per agent per second on average, and the burst allowed above it (a token
    #: bucket). The excess is dropped and counted in the agent's ``metrics_dropped``; the
    #: agent is not told (the stream stays open), the server logs a warning at most once per
    #: ``metric_warn_interval`` per agent.
    metric_rate: float = 200.0
    metric_burst: float = 20_000.0
    metric_warn_interval: float = 60.0
    #: Metrics in one batch message; the rest of the batch is dropped and counted.
    metric_batch_max: int = 1000
    #: Metric rows kept per agent and plugin (the newest ones); the retention sweep (every
    #: ``retention_interval``) deletes older rows, as it deletes rows older than
    #: ``metric_retention``.
    metric_rows_per_plugin: int = 100_000
    #: Audit rows are kept this long, and at most this many (the newest), so a flood of
    #: refused calls cannot fill the disk; the retention sweep enforces both.
    audit_retention: float = 365 * 86400.0
    audit_max_rows: int = 1_000_000
    # -- fleet views and retention (issue 14, "views" part) ------------------------------
    #: Finished jobs (succeeded, failed, cancelled, timed out) are kept this long, and at most
    #: this many (the newest); queued and running jobs are never deleted. The retention sweep
    #: (every ``retention_interval``) enforces both.
    job_retention: float = 30 * 86400.0
    job_max_rows: int = 100_000
    # -- plugin health and logs (issue 14, part "truth") ---------------------------------
    #: How long a read of a plugin's logs (``GET /agents/{id}/plugins/{name}/logs``,
    #: ``arcade logs``) waits for the agent's answer on its stream; then 504.
    logs_timeout: float = 5.0
    #: A Connect stream that sends no Register within this long is closed (DEADLINE_EXCEEDED).
    register_timeout: float = 30.0
    # -- import from a package index (issue 15, part "index"): see package_index.py
    #: The default index of imports; the indexes (URL prefixes) they may read, empty: any
    #: http(s) one (docs/security.md: SSRF); the longest an import may take (then 502).
    index_url: str = "https://pypi.org/simple/"
    index_allow: tuple[str, ...] = ()
    import_timeout: float = 300.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser())
        self._check_transport()
        if not self.database_url:
            url = f"sqlite:///{self.home / 'arcade.db'}"
        else:
            url = str(self.database_url)
            for prefix in ("postgresql://", "postgres://"):
                if url.startswith(prefix):
                    url = "postgresql+psycopg://" + url[len(prefix):]
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", url):
            raise SettingsError(
                f"database_url: {self.database_url!r} is not supported; use sqlite:///PATH or "
                "postgresql://USER@HOST:PORT/DB"
            )
        object.__setattr__(self, "database_url", url)
        for port_name in ("http_port", "grpc_port"):
            port = getattr(self, port_name)
            if not 0 <= port <= 65535:
                raise SettingsError(f"{port_name}: {port} is not a TCP port (0-65535; 0 = any)")
        if self.offline_after == 0:
            object.__setattr__(self, "offline_after", 3 * self.heartbeat_interval)
        for name in _DURATIONS:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name}: must be positive, got {getattr(self, name)}")
        if not MIN_CHUNK <= self.chunk_size <= MAX_CHUNK:
            raise SettingsError(
                f"chunk_size: {self.chunk_size} bytes is outside 256 KiB - 1 MiB "
                f"({MIN_CHUNK}-{MAX_CHUNK})"
            )
        if self.max_upload_bytes <= 0:
            raise SettingsError("max_upload_bytes: must be positive")
        if self.db_threads < 1 or self.metric_query_limit < 1:
            raise SettingsError("db_threads and metric_query_limit must be at least 1")
        if self.offline_after <= self.heartbeat_interval:
            raise SettingsError(
                f"offline_after ({self.offline_after}s) must be longer than heartbeat_interval "
                f"({self.heartbeat_interval}s), or every agent would flap offline"
            )
        if self.job_lost_after <= self.heartbeat_interval:
            raise SettingsError(
                f"job_lost_after ({self.job_lost_after}s) must be longer than heartbeat_interval "
                f"({self.heartbeat_interval}s), or running jobs would be failed while their "
                "agent is fine"
            )
        if self.job_default_timeout > self.job_max_timeout:
            raise SettingsError(
                f"job_default_timeout ({self.job_default_timeout}s) must not be longer than "
                f"job_max_timeout ({self.job_max_timeout}s)"
            )
        if self.admin_token and (len(self.admin_token) < 16 or not self.admin_token.isprintable()
                                 or self.admin_token.strip() != self.admin_token):
            raise SettingsError(
                "admin_token: must be at least 16 printable characters without surrounding "
                "spaces (or empty for a random one)")
        self._check_limits()
        self._check_views()
        for name, value in index_settings(self.index_url, self.index_allow).items():
            object.__setattr__(self, name, value)
        if self.log_level.lower() not in ("critical", "error", "warning", "info", "debug"):
            raise SettingsError(f"log_level: {self.log_level!r} is not a logging level")

    def _check_transport(self) -> None:
        """Validate the transport block (part "tls"); see :mod:`._settings_transport`."""
        for name, value in transport_values(self).items():
            object.__setattr__(self, name, value)

    @property
    def http_scheme(self) -> str:
        """``https`` when REST is served with TLS (beyond loopback, or ``http_tls = on``)."""
        if self.http_tls == "on" or (self.http_tls == "auto"
                                     and not is_loopback(self.http_host)):
            return "https"
        return "http"

    def _check_views(self) -> None:
        """Validate the fleet views and retention block (part "views")."""
        if self.job_max_rows < 1:
            raise SettingsError(f"job_max_rows: must be at least 1, got {self.job_max_rows}")

    def _check_limits(self) -> None:
        for name in ("max_config_bytes", "max_plugins_per_agent", "max_wheel_bytes",
                     "grpc_max_receive_bytes", "metric_batch_max", "metric_rows_per_plugin",
                     "audit_max_rows"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if not (self.metric_rate > 0 and self.metric_burst >= 1):
            raise SettingsError("metric_rate must be positive and metric_burst at least 1")
        bound = limits.desired_state_bound(self.max_config_bytes, self.max_plugins_per_agent)
        if bound > limits.GRPC_MAX_SEND:
            raise SettingsError(
                f"max_plugins_per_agent ({self.max_plugins_per_agent}) x (max_config_bytes "
                f"({self.max_config_bytes}) + {limits.PLUGIN_OVERHEAD}) = {bound} bytes: a "
                f"desired state that large could not be sent (limit {limits.GRPC_MAX_SEND}); "
                "lower one of them"
            )
        if limits.job_bound(self.max_config_bytes, limits.MAX_JOB_PLUGINS) > \
                limits.GRPC_MAX_SEND:
            raise SettingsError(
                f"max_config_bytes ({self.max_config_bytes}) is too large: a job with "
                f"{limits.MAX_JOB_PLUGINS} plugin entries could not be sent; lower it")

    @property
    def config_limits(self) -> limits.ConfigLimits:
        """The limits the assignment and job services check."""
        return limits.ConfigLimits(self.max_config_bytes, self.max_plugins_per_agent)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def admin_token_file(self) -> Path:
        """Where the first admin token's secret is written (mode 0600)."""
        return self.home / "admin-token"

    @property
    def upload_dir(self) -> Path:
        """Where uploads are spooled while they arrive (same filesystem as the blobs)."""
        return self.home / "uploads"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "settings") -> Settings:
        """Build settings from raw (string or typed) values, converting and validating each."""
        known = {f.name for f in fields(cls)}
        converted: dict[str, Any] = {}
        for key, value in values.items():
            name = key.replace("-", "_").lower()
            if name not in known:
                raise SettingsError(
                    f"{source}: unknown setting {key!r}; known: {', '.join(sorted(known))}"
                )
            if name in _DURATIONS:
                converted[name] = duration_value(name, value)
            elif name in _SIZES:
                converted[name] = size_value(name, value)
            elif name in _INTEGERS:
                converted[name] = integer_value(name, value)
            elif name in _FLOATS:
                converted[name] = number_value(name, value)
            elif name == "home":
                converted[name] = Path(str(value))
            elif name in ("san", "index_allow"):
                converted[name] = tuple(str(v) for v in value) if isinstance(
                    value, list | tuple) else str(value)
            elif name == "agent_cert_days":
                try:
                    converted[name] = float(value)
                except (TypeError, ValueError):
                    raise SettingsError(
                        f"agent_cert_days: expected a number of days, got {value!r}") from None
            elif name.startswith("tls_") and name.endswith("_file"):
                converted[name] = Path(str(value)) if value else None
            else:
                converted[name] = str(value)
        return cls(**converted)

    @classmethod
    def load(
        cls,
        config_file: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Merge defaults < config file < ``ARCADE_SERVER_*`` env < ``overrides`` (None = unset)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        config_file = config_file or env.get(f"{ENV_PREFIX}CONFIG") or None
        if config_file:
            values.update(read_config(Path(config_file)))
        known = {f.name for f in fields(cls)}
        for name in known:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(values)
