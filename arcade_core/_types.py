"""Small value types passed between the host and plugins.

They are plain dataclasses with ``to_dict``/``from_dict`` so that they cross the
subprocess protocol and the gRPC wire as JSON without any plugin code on the far side.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .states import JobStatus

__all__ = ["Event", "JobContext", "JobResult", "Metric"]


@dataclass(slots=True)
class Metric:
    """One measurement returned by ``collect``.

    ``name`` is dotted (``cpu.percent``), ``value`` a number, ``labels`` free-form
    strings (``{"cpu": "0"}``), ``unit`` optional (``percent``, ``bytes``), and
    ``timestamp`` seconds since the epoch (filled in at creation).
    """

    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    unit: str = ""
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metric:
        return cls(
            name=str(data["name"]),
            value=float(data["value"]),
            labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
            unit=str(data.get("unit") or ""),
            timestamp=float(data.get("timestamp") or time.time()),
        )


@dataclass(slots=True)
class JobContext:
    """What a job plugin sees of the job it takes part in.

    ``plugin_config`` is the config given to this plugin *for this job stage*;
    ``workdir`` is where the commands run (set by a ``before`` plugin or the agent).
    """

    job_id: str
    commands: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = ""
    stage: str = ""
    plugin_config: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobContext:
        return cls(
            job_id=str(data["job_id"]),
            commands=list(data.get("commands") or []),
            env=dict(data.get("env") or {}),
            workdir=str(data.get("workdir") or ""),
            stage=str(data.get("stage") or ""),
            plugin_config=dict(data.get("plugin_config") or {}),
            outputs=dict(data.get("outputs") or {}),
        )


@dataclass(slots=True)
class JobResult:
    """The outcome of a job's commands, given to ``after`` hooks.

    ``status`` is a final :class:`~arcade_core.JobStatus`: ``succeeded``, ``failed``,
    ``timed_out`` or ``cancelled`` (a plain string in a plugin's child process; the two
    compare equal).
    """

    job_id: str
    status: str
    exit_code: int | None = None
    output_tail: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    error: str = ""

    @property
    def succeeded(self) -> bool:
        """True when every command exited 0."""
        return self.status == JobStatus.SUCCEEDED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        exit_code = data.get("exit_code")
        return cls(
            job_id=str(data["job_id"]),
            status=str(data["status"]),
            exit_code=None if exit_code is None else int(exit_code),
            output_tail=str(data.get("output_tail") or ""),
            started_at=float(data.get("started_at") or 0.0),
            finished_at=float(data.get("finished_at") or 0.0),
            error=str(data.get("error") or ""),
        )


@dataclass(slots=True)
class Event:
    """Something a ``notify`` plugin may want to hear about.

    ``kind`` is e.g. ``job.finished``, ``plugin.failed``, ``plugin.loaded``;
    ``data`` carries the details as JSON-safe values.
    """

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        return cls(
            kind=str(data["kind"]),
            data=dict(data.get("data") or {}),
            timestamp=float(data.get("timestamp") or time.time()),
        )
