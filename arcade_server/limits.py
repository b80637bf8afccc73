"""Limits on what clients may send, and the arithmetic that keeps every message sendable.

Why: one oversized or malformed input must never cost the server more than a 4xx (or a gRPC
status) — no crash, no unbounded disk or memory, and above all no accepted change that makes
an agent's desired state too large to send (the agent would reconnect in a loop, getting
nothing). Each limit is checked BEFORE anything is written.

Fixed limits (the database columns, the wire format) are constants here; the tunable ones are
settings (``max_config_bytes``, ``max_plugins_per_agent``, … in :mod:`arcade_server.settings`,
which checks with :func:`desired_state_bound` that their product fits :data:`GRPC_MAX_SEND`).

The bound on one encoded ``DesiredState`` (protobuf: a field costs its tag, a length varint
and its bytes; every figure below rounds up):

* one ``WheelRef``: filename ≤ 300 + 3, sha256 64 + 2, size ≤ 11, wrapper 3 → ≤ 383 bytes;
  a version has at most :data:`MAX_WHEELS` (200) → ≤ 76,600 bytes;
* one ``DesiredPlugin``: name ≤ 200 + 3, version ≤ 100 + 2, isolation 2, interval 9,
  wrapper 6, config ≤ ``max_config_bytes`` + 6 and the wheels: together at most
  ``max_config_bytes`` + :data:`PLUGIN_OVERHEAD` (80,000) bytes;
* the message: revision and wrappers ≤ 64 bytes, plus ``max_plugins_per_agent`` plugins.

Defaults: 64 × (65,536 + 80,000) + 64 = 9,314,368 bytes (8.9 MiB), under
:data:`GRPC_MAX_SEND` = 16 MiB, which is also what the agent accepts
(``grpc.max_receive_message_length`` in ``arcade_agent.connection``). A job message is
bounded the same way: commands and env together ≤ :data:`MAX_JOB_TEXT_BYTES` (4 MiB) plus
``MAX_PLUGINS`` (32) plugin entries → ≤ 8.9 MiB.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import Invalid, PayloadTooLarge

__all__ = [
    "GRPC_MAX_SEND",
    "MAX_JOB_PLUGINS",
    "MAX_JOB_TEXT_BYTES",
    "MAX_LABELS",
    "MAX_LABEL_KEY",
    "MAX_LABEL_NAME",
    "MAX_LABEL_VALUE",
    "MAX_NAME_LENGTH",
    "MAX_SPEC_LENGTH",
    "MAX_VERSION_LENGTH",
    "MAX_WHEELS",
    "PLUGIN_OVERHEAD",
    "ConfigLimits",
    "RateLimiter",
    "canonical_config",
    "check_job_text",
    "check_labels",
    "check_name_version",
    "desired_state_bound",
    "job_bound",
]

#: Longest plugin (and wheel project) name: the ``plugins.name`` column.
MAX_NAME_LENGTH = 200
#: Longest version: the ``plugin_versions.version`` column.
MAX_VERSION_LENGTH = 100
#: Longest spec text (``name@range``): ``arcade_core.parse_spec``'s limit.
MAX_SPEC_LENGTH = 500
#: Most wheels in one publish (so in one version's desired plugin).
MAX_WHEELS = 200
#: Bytes of one desired plugin besides its config (see the module docstring).
PLUGIN_OVERHEAD = 80_000
#: Largest message the server sends an agent; the agent accepts 16 MiB.
GRPC_MAX_SEND = 16 * 1024 * 1024
#: Plugin entries per job (``services.job_requests.MAX_PLUGINS``; a test checks they agree).
MAX_JOB_PLUGINS = 32
#: A job's commands and env values together, in bytes (UTF-8).
MAX_JOB_TEXT_BYTES = 4 * 1024 * 1024
#: Labels per agent, and their sizes (like Kubernetes: a name of ≤ 63 characters after an
#: optional ``prefix/``; the whole key fits the 200-character column; values ≤ 256).
MAX_LABELS = 64
MAX_LABEL_KEY = 200
MAX_LABEL_NAME = 63
MAX_LABEL_VALUE = 256

_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


@dataclass(frozen=True)
class ConfigLimits:
    """The tunable limits the assignment and job services check (from the settings of the
    same names)."""

    max_config_bytes: int = 64 * 1024
    max_plugins_per_agent: int = 64


def desired_state_bound(max_config_bytes: int, max_plugins: int) -> int:
    """The largest encoded ``DesiredState`` these settings allow (module docstring)."""
    return 64 + max_plugins * (max_config_bytes + PLUGIN_OVERHEAD)


def job_bound(max_config_bytes: int, max_job_plugins: int) -> int:
    """The largest encoded ``Job`` message these settings allow."""
    return 64 + MAX_JOB_TEXT_BYTES + max_job_plugins * (max_config_bytes + PLUGIN_OVERHEAD)


def canonical_config(config: Mapping[str, Any], what: str, max_bytes: int) -> str:
    """``config`` as canonical JSON (sorted keys, no spaces), checked: a non-finite number
    (``NaN``, ``Infinity``: not JSON, and no agent could read it) is :class:`Invalid` (422),
    more than ``max_bytes`` is :class:`PayloadTooLarge` (413). ``what`` names the config in
    the message."""
    try:
        text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise Invalid(
            f"{what}: the config contains a number that is not finite (NaN or Infinity); "
            "JSON allows only finite numbers"
        ) from None
    except TypeError as exc:
        raise Invalid(f"{what}: the config is not JSON: {exc}") from None
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise PayloadTooLarge(
            f"{what}: the config is {size} bytes as canonical JSON, over the server's limit "
            f"of {max_bytes} bytes (max_config_bytes); keep large data in files the plugin "
            "reads",
            {"max_config_bytes": max_bytes, "size": size},
        )
    return text


def check_name_version(name: str, version: str, what: str) -> None:
    """:class:`Invalid` when ``name`` or ``version`` is longer than its column."""
    if len(name) > MAX_NAME_LENGTH:
        raise Invalid(f"{what}: the name is {len(name)} characters; at most {MAX_NAME_LENGTH}")
    if len(version) > MAX_VERSION_LENGTH:
        raise Invalid(
            f"{what}: the version is {len(version)} characters; at most {MAX_VERSION_LENGTH}")


def check_job_text(commands: Sequence[str], env: Mapping[str, str]) -> None:
    """:class:`PayloadTooLarge` when a job's commands and env values together are over
    :data:`MAX_JOB_TEXT_BYTES` (each is bounded on its own; this bounds their sum, so the
    ``Job`` message stays sendable)."""
    size = sum(len(c.encode("utf-8", "surrogatepass")) for c in commands) + sum(
        len(k) + len(v.encode("utf-8", "surrogatepass")) for k, v in env.items())
    if size > MAX_JOB_TEXT_BYTES:
        raise PayloadTooLarge(
            f"the job's commands and env are {size} bytes together; at most "
            f"{MAX_JOB_TEXT_BYTES}: put long scripts and data in files",
            {"max_job_text_bytes": MAX_JOB_TEXT_BYTES, "size": size},
        )


class RateLimiter:
    """Token buckets by key (an agent id): ``rate`` tokens a second, at most ``burst`` saved.

    Used for metrics: :meth:`take` says how many of ``n`` items may pass now; the caller drops
    and counts the rest. :meth:`should_warn` is true at most once per ``warn_interval`` per
    key, so a flooding client costs one log line a minute, not one per batch. Event-loop
    thread only; a few dozen bytes per key (keys are registered agents)."""

    __slots__ = ("_buckets", "_warned", "burst", "rate", "warn_interval")

    def __init__(self, rate: float, burst: float, *, warn_interval: float = 60.0) -> None:
        self.rate = rate
        self.burst = burst
        self.warn_interval = warn_interval
        self._buckets: dict[str, tuple[float, float]] = {}
        self._warned: dict[str, float] = {}

    def take(self, key: str, n: int, now: float | None = None) -> int:
        """How many of ``n`` items ``key`` may pass now (the tokens are spent)."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        allowed = min(n, int(tokens))
        self._buckets[key] = (tokens - allowed, now)
        return allowed

    def should_warn(self, key: str, now: float | None = None) -> bool:
        """True if ``key`` was not warned about in the last ``warn_interval`` seconds."""
        now = time.monotonic() if now is None else now
        last = self._warned.get(key)
        if last is not None and now - last < self.warn_interval:
            return False
        self._warned[key] = now
        return True


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels (an agent's, or a selector), if there are at most :data:`MAX_LABELS` and
    each key and value is acceptable (keys: an optional ``prefix/`` and a name of at most
    :data:`MAX_LABEL_NAME` letters, digits and ``. _ -``, the whole at most
    :data:`MAX_LABEL_KEY` characters; values at most :data:`MAX_LABEL_VALUE`); else
    :class:`Invalid` saying which and why."""
    if len(labels) > MAX_LABELS:
        raise Invalid(f"{len(labels)} labels given; at most {MAX_LABELS}")
    out: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.match(key) \
                or len(key.rpartition("/")[2]) > MAX_LABEL_NAME:
            shown = key[:60] + "..." if isinstance(key, str) and len(key) > 60 else key
            raise Invalid(
                f"invalid label key {shown!r}: use letters, digits and . _ / -, starting with "
                f"a letter or digit, at most {MAX_LABEL_KEY} characters, the part after the "
                f"last '/' at most {MAX_LABEL_NAME}"
            )
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE:
            raise Invalid(f"invalid value for label {key!r}: a string of at most "
                          f"{MAX_LABEL_VALUE} characters")
        out[key] = value
    return out
