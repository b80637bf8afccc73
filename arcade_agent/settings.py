"""The agent's settings: defaults < config file (TOML or YAML) < ``ARCADE_AGENT_*`` env < flags.

Every setting has one name used everywhere: the config file key, the environment variable
(``ARCADE_AGENT_`` + upper case, e.g. ``ARCADE_AGENT_CACHE_MAX_BYTES``) and the keyword of
:meth:`AgentSettings.load`. Any mistake (unknown key, wrong type, negative size) raises one
:class:`AgentConfigError` that names the setting, where it came from, and what is expected.

The agent id defaults to something stable for the machine (host name plus a short hash of
``/etc/machine-id``) and is persisted in ``<home>/agent-id`` the first time, so an agent keeps
its identity across restarts even if the host is renamed.

Jobs are opt-in: the agent runs job commands only with ``jobs_enabled`` (off by default), and
then only those matching ``jobs_allow`` when it is given (see :mod:`arcade_core.job_policy`).
In a config file they may also be written as a table::

    [jobs]
    enabled = true
    allow = ["make *", "pytest *"]

(``ARCADE_AGENT_JOBS_ENABLED=true``; ``ARCADE_AGENT_JOBS_ALLOW`` is a JSON list of patterns,
or one pattern per line.)

Local plugins are a ``plugins:`` mapping (:mod:`arcade_agent.local_settings`). ``server`` is
optional: with none configured and local plugins the agent runs standalone
(:attr:`AgentSettings.standalone`); with neither it connects to :data:`DEFAULT_SERVER`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arcade_core.job_policy import JobPolicy

from ._values import boolean as _boolean
from ._values import check_agent_id, check_label_key, check_memory_limit, check_server
from ._values import patterns as _patterns
from .drift_settings import DriftSettings, drift_settings
from .errors import AgentConfigError
from .facts import default_agent_id
from .local_settings import LocalPluginSpec, parse_local_plugins
from .log_settings import LogSettings, log_settings
from .trust import Trust, parse_trust

__all__ = ["DEFAULT_SERVER", "AgentConfigError", "AgentSettings", "default_agent_id",
           "parse_labels", "parse_size"]

ENV_PREFIX = "ARCADE_AGENT_"
#: The server an agent connects to when none is configured and it has no local plugins.
DEFAULT_SERVER = "127.0.0.1:9090"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
          "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}
_CA_HASH = re.compile(r"^sha256:[0-9a-f]{64}$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Everything an :class:`~arcade_agent.Agent` needs to know; immutable once built.

    Times are seconds. ``server`` is ``HOST:PORT`` of the Arcade server's gRPC port.
    ``agent_id`` is ``None`` until :meth:`resolved` fills in the stable default.
    ``collect_interval`` applies to plugins whose desired state and manifest name no interval;
    ``collect_interval_override`` (> 0) collects every plugin at that interval instead,
    whatever they say (demos, tests, debugging a plugin).
    """

    #: ``None``: no server configured; with local ``plugins`` the agent runs standalone,
    #: else it connects to :data:`DEFAULT_SERVER` (see :attr:`standalone`).
    server: str | None = None
    agent_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    home: Path = field(default_factory=lambda: Path.home() / ".arcade" / "agent")
    cache_max_bytes: int = 1024**3
    download_timeout: float = 300.0
    download_concurrency: int = 4
    download_retries: int = 3
    collect_interval: float = 10.0
    collect_interval_override: float = 0.0
    metric_buffer: int = 10_000
    metric_batch_size: int = 1_000
    heartbeat_interval: float = 15.0
    reconnect_initial: float = 0.5
    #: The longest wait between reconnect attempts (jittered); short, so a fleet is back
    #: within seconds of a server restart.
    reconnect_max: float = 5.0
    call_timeout: float = 30.0
    max_restarts: int = 3
    restart_backoff: float = 0.5
    healthy_period: float = 300.0
    #: Silence (seconds without a protocol line: a metric, a heartbeat, anything) after which a
    #: process or exec plugin's child is killed as hung, which counts as a crash.
    hang_timeout: float = 30.0
    #: The memory limit of a process or exec plugin whose manifest and assignment set none
    #: ("none": unlimited); a plugin over its limit is killed (arcade_core.resources).
    plugin_memory_limit: str = "1Gi"
    #: Hook calls failed in a row after which a plugin shows ``degraded`` (until one succeeds).
    degraded_after: int = 3
    #: Jobs run at once; more wait (still ``queued`` on the server) for a slot.
    job_concurrency: int = 2
    #: Run job commands at all (``[jobs] enabled``); off by default.
    jobs_enabled: bool = False
    #: Shell-style patterns every job command must match (``[jobs] allow``; empty: any).
    jobs_allow: tuple[str, ...] = ()
    #: First start only: the enrollment token exchanged for the agent's certificate
    #: (``<home>/tls``); later starts ignore it. Never logged.
    enroll_token: str | None = field(default=None, repr=False)
    #: The server's CA certificate (trusted as is), or the pin of its public key
    #: (``sha256:<hex>``) to fetch it with; needed to enroll.
    ca_file: Path | None = None
    ca_hash: str | None = None
    drift: DriftSettings = field(default_factory=DriftSettings)  # [drift]: drift_settings.py
    trust: Trust = field(default_factory=Trust)  # [[trust.keys]]: trust.py
    #: Local plugins (``plugins:``, :mod:`arcade_agent.local_settings`), run with or
    #: without a server.
    plugins: tuple[LocalPluginSpec, ...] = ()
    log: LogSettings = field(default_factory=LogSettings)  # [log]: log_settings.py

    # ------------------------------------------------------------------ building

    @classmethod
    def load(
        cls,
        config_file: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> AgentSettings:
        """Build settings from a config file, ``ARCADE_AGENT_*`` variables and overrides.

        ``overrides`` are the command line flags (``None`` values are ignored, so a flag
        that was not given does not hide the file or the environment). ``env`` defaults to
        :data:`os.environ`; ``ARCADE_AGENT_CONFIG`` names a config file when none is given.
        Raises :class:`AgentConfigError` on the first problem, naming its source.
        """
        env = os.environ if env is None else env
        values: dict[str, tuple[Any, str]] = {}
        if config_file is None and env.get(ENV_PREFIX + "CONFIG"):
            config_file = env[ENV_PREFIX + "CONFIG"]
        if config_file is not None:
            path = Path(config_file)
            for key, value in _read_config_file(path).items():
                values[key] = (value, f"config file {path}")
        for name in _field_names():
            var = ENV_PREFIX + name.upper()
            if var in env:
                values[name] = (env[var], f"environment variable {var}")
        for name, value in overrides.items():
            if value is None:
                continue
            values[name] = (value, f"option --{name.replace('_', '-')}")
        known = _field_names()
        kwargs: dict[str, Any] = {}
        for name, (value, source) in values.items():
            if name not in known:
                raise AgentConfigError(
                    f"unknown setting {name!r} in {source}; known settings: "
                    + ", ".join(sorted(known)))
            kwargs[name] = _coerce(name, value, source)
        return cls(**kwargs)

    def __post_init__(self) -> None:
        for name in ("download_timeout", "collect_interval", "heartbeat_interval",
                     "reconnect_initial", "reconnect_max", "call_timeout", "restart_backoff",
                     "healthy_period", "hang_timeout"):
            if not getattr(self, name) > 0:
                raise AgentConfigError(f"setting {name!r} must be a positive number of seconds")
        check_memory_limit(self.plugin_memory_limit)
        for name in ("download_concurrency", "metric_buffer", "metric_batch_size",
                     "job_concurrency", "degraded_after"):
            if getattr(self, name) < 1:
                raise AgentConfigError(f"setting {name!r} must be at least 1")
        for name in ("cache_max_bytes", "max_restarts", "download_retries",
                     "collect_interval_override"):
            if getattr(self, name) < 0:
                raise AgentConfigError(f"setting {name!r} must not be negative")
        if self.reconnect_max < self.reconnect_initial:
            raise AgentConfigError("setting 'reconnect_max' must be >= 'reconnect_initial'")
        if self.server is not None:
            check_server(self.server, "setting 'server'")
        if self.agent_id is not None:
            check_agent_id(self.agent_id, "setting 'agent_id'")
        if self.ca_hash is not None and not _CA_HASH.match(self.ca_hash):
            raise AgentConfigError(f"setting 'ca_hash': {self.ca_hash!r} is not sha256:<64 hex "
                                   "digits> (the ca_hash printed by arcade enroll create)")
        for key in self.labels:
            check_label_key(key, "setting 'labels'")
        for pattern in self.jobs_allow:
            if not isinstance(pattern, str) or not pattern.strip() or "\0" in pattern:
                raise AgentConfigError(f"setting 'jobs_allow': {pattern!r} is not a command "
                                       "pattern (a non-empty string, e.g. \"make *\")")

    @property
    def standalone(self) -> bool:
        """True when the agent runs without a server: no ``server`` is configured and it
        declares local plugins (an agent with neither keeps connecting to
        :data:`DEFAULT_SERVER`, as it always did)."""
        return self.server is None and bool(self.plugins)

    @property
    def server_address(self) -> str:
        """The server's gRPC ``HOST:PORT`` to connect to (:data:`DEFAULT_SERVER` when none
        is configured); meaningless when :attr:`standalone`."""
        return self.server or DEFAULT_SERVER

    @property
    def job_policy(self) -> JobPolicy:
        """The ``[jobs]`` policy: whether and which job commands this agent runs."""
        return JobPolicy(self.jobs_enabled, self.jobs_allow)

    def resolved(self) -> AgentSettings:
        """These settings with ``agent_id`` filled in (read from or persisted to ``home``).

        An explicit id is used as is and not persisted (the operator chose it); otherwise
        ``<home>/agent-id`` is read, or created atomically with :func:`default_agent_id`.
        """
        if self.agent_id is not None:
            return self
        path = self.home / "agent-id"
        try:
            stored = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            stored = ""
        except OSError as exc:
            raise AgentConfigError(f"cannot read the agent id from {path}: {exc}") from None
        if stored:
            check_agent_id(stored, f"the agent id stored in {path}")
            return dataclasses.replace(self, agent_id=stored)
        agent_id = default_agent_id()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".agent-id.{os.getpid()}.tmp")
            tmp.write_text(agent_id + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            raise AgentConfigError(
                f"cannot persist the agent id in {path}: {exc}; "
                "give --home a writable directory or set the id with --id"
            ) from None
        return dataclasses.replace(self, agent_id=agent_id)

    @property
    def id(self) -> str:
        """The agent id; only valid on :meth:`resolved` settings."""
        if self.agent_id is None:
            raise AgentConfigError("agent id not resolved yet: call settings.resolved() first")
        return self.agent_id


def parse_labels(items: list[str] | tuple[str, ...] | str) -> dict[str, str]:
    """Parse ``k=v`` items (or one comma separated string) into a label mapping."""
    if isinstance(items, str):
        items = [part for part in items.split(",") if part.strip()]
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AgentConfigError(f"invalid label {item!r}: expected KEY=VALUE, e.g. env=prod")
        check_label_key(key, f"label {item!r}")
        labels[key] = value.strip()
    return labels


def parse_size(value: str | int) -> int:
    """``1073741824``, ``"512MiB"``, ``"2 GB"`` → bytes; raises :class:`AgentConfigError`."""
    if isinstance(value, bool):
        raise AgentConfigError(f"invalid size {value!r}: expected bytes, e.g. 512MiB")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise AgentConfigError(
            f"invalid size {value!r}: expected a number of bytes with an optional unit "
            "(B, KB, MB, GB, KiB, MiB, GiB), e.g. 512MiB")
    unit = (match.group(2) or "").lower().rstrip("b")
    return int(float(match.group(1)) * _UNITS[unit])


# ---------------------------------------------------------------------- helpers


def _field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(AgentSettings)}


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AgentConfigError(f"cannot read the config file {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(raw.decode("utf-8"))
        elif suffix in (".yaml", ".yml"):
            import yaml  # imported here: only YAML users pay for it

            data = yaml.safe_load(raw) or {}
        else:
            raise AgentConfigError(
                f"config file {path}: unknown format {suffix!r}; use a .toml, .yaml or .yml file"
            )
    except AgentConfigError:
        raise
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError
        raise AgentConfigError(f"config file {path} is not valid {suffix[1:]}: {exc}") from None
    if not isinstance(data, dict):
        raise AgentConfigError(f"config file {path}: expected a table/mapping of settings")
    # An [agent] table (or `agent:` mapping) may hold the settings; [jobs], [trust] beside it.
    if set(data) - {"jobs", "trust", "plugins"} == {"agent"} and isinstance(data["agent"], dict):
        data = {**{k: v for k, v in data.items() if k != "agent"}, **data["agent"]}
    out = {str(k).replace("-", "_"): v for k, v in data.items()}
    if "trust" in out:  # [[trust.keys]]: relative files are next to the config file
        out["trust"] = parse_trust(out["trust"], f"config file {path}", base=path.parent)
    if "plugins" in out:  # a relative wheel: next to the config file
        try:
            out["plugins"] = parse_local_plugins(out["plugins"], base=path.parent)
        except AgentConfigError as exc:
            raise AgentConfigError(f"config file {path}: {exc}") from None
    jobs = out.pop("jobs", None)
    if jobs is not None:
        if not isinstance(jobs, dict):
            raise AgentConfigError(f"config file {path}: [jobs] must be a table, e.g. "
                                   '[jobs] enabled = true, allow = ["make *"]')
        for key, value in jobs.items():
            if key not in ("enabled", "allow"):
                raise AgentConfigError(f"config file {path}: unknown setting 'jobs.{key}'; "
                                       "[jobs] takes enabled and allow")
            out[f"jobs_{key}"] = value
    return out


def _coerce(name: str, value: Any, source: str) -> Any:
    try:
        if name in ("server", "agent_id", "enroll_token", "ca_hash"):
            if not isinstance(value, str) or not value.strip():
                raise ValueError("expected a non-empty string")
            return value.strip()
        if name in ("home", "ca_file"):
            return Path(str(value)).expanduser()
        if name == "labels":
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
            if isinstance(value, list | tuple | str):
                return parse_labels(value if isinstance(value, str) else [str(v) for v in value])
            raise ValueError("expected a mapping or KEY=VALUE items")
        if name == "cache_max_bytes":
            return parse_size(value)
        if name in ("jobs_enabled", "drift"):
            return _boolean(value) if name == "jobs_enabled" else drift_settings(value)
        if name == "jobs_allow":
            return _patterns(value)
        if name == "trust":
            return parse_trust(value, source)
        if name == "plugins":
            return parse_local_plugins(value)
        if name == "log":
            return log_settings(value)
        if name in ("download_concurrency", "download_retries", "metric_buffer",
                    "metric_batch_size", "max_restarts", "job_concurrency", "degraded_after"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected a whole number")
            return int(value)
        if isinstance(value, bool):
            raise ValueError("expected a number of seconds")
        return float(value)
    except AgentConfigError as exc:
        raise AgentConfigError(f"{source}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise AgentConfigError(f"setting {name!r} from {source}: {value!r} is invalid ({exc})") \
            from None
