"""Between the services' plain values and the ``arcade.v1`` protobuf messages.

Encoding (server → agent): :func:`desired_to_pb`, :func:`job_to_pb`, :func:`cancel_to_pb`
build the ``ServerMessage``\\ s a stream sends. Decoding (agent → server):
:func:`agent_info_from_pb`, :func:`reported_from_pb` and :func:`event_from_pb` turn an
agent's messages into service values, and :func:`wire_word` maps a protobuf enum number to
its vocabulary word (an unknown number is :class:`~arcade_server.errors.Invalid`). The
enums themselves are mapped in one place, :mod:`arcade_core.rpc.v1.convert`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from arcade_core import ProtocolError
from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import from_pb, to_pb
from arcade_core.states import Isolation, JobStatus, PluginState, RecordStatus

from ..errors import Invalid
from ..services.agents import AgentInfo
from ..services.desired import DesiredState
from ..services.dispatch import Dispatch
from ..services.job_runs import JobEventData, RecordData
from ..services.status_reports import ReportedPlugin

__all__ = [
    "agent_info_from_pb",
    "cancel_to_pb",
    "desired_to_pb",
    "event_from_pb",
    "job_to_pb",
    "logs_from_pb",
    "logs_request_to_pb",
    "reported_from_pb",
    "wire_word",
]


def wire_word(cls: type[StrEnum], number: int) -> str:
    """The vocabulary word for a protobuf enum ``number`` from an agent ("" when unset);
    :class:`~arcade_server.errors.Invalid` (``INVALID_ARGUMENT``) for a number this server
    does not know."""
    try:
        return str(from_pb(cls, number) or "")
    except ProtocolError as exc:
        raise Invalid(str(exc)) from None


# ---------------------------------------------------------------- server → agent


def desired_to_pb(state: DesiredState) -> pb.ServerMessage:
    """The ``DesiredState`` message for ``state``."""
    return pb.ServerMessage(desired=pb.DesiredState(
        revision=state.revision,
        plugins=[
            pb.DesiredPlugin(
                name=p.name, version=p.version,
                isolation=to_pb(Isolation(p.isolation) if p.isolation else None),
                config_json=p.config_json, interval=p.interval, resources=dict(p.resources),
                wheels=[pb.WheelRef(filename=w.filename, sha256=w.sha256, size=w.size)
                        for w in p.wheels],
                signatures=[pb.PluginSignature(key_id=s.key_id, signature=s.signature)
                            for s in p.signatures],
            )
            for p in state.plugins
        ],
    ))


def job_to_pb(dispatch: Dispatch) -> pb.ServerMessage:
    """The ``Job`` message that hands ``dispatch`` to its agent."""
    return pb.ServerMessage(job=pb.Job(
        job_id=dispatch.job_id,
        commands=list(dispatch.commands),
        env=dict(dispatch.env),
        timeout=dispatch.timeout,
        plugins=[
            pb.JobPlugin(
                index=e.index, name=e.name, version=e.version,
                stage=to_pb(e.stage), order=e.order, isolation=to_pb(e.isolation),
                config_json=json.dumps(e.config, sort_keys=True, separators=(",", ":")),
                wheels=[pb.WheelRef(filename=f, sha256=s, size=n) for f, s, n in e.wheels],
                signatures=[pb.PluginSignature(key_id=sig.key_id, signature=sig.signature)
                            for sig in e.signatures],
            )
            for e in dispatch.plugins
        ],
    ))


def logs_request_to_pb(request_id: str, plugin: str, after: int, limit: int
                      ) -> pb.ServerMessage:
    """The ``LogsRequest`` asking an agent for ``plugin``'s lines after ``after``."""
    return pb.ServerMessage(logs_request=pb.LogsRequest(
        request_id=request_id, plugin=plugin, after=after, limit=limit))


def logs_from_pb(message: Any) -> dict[str, Any]:
    """An agent's ``PluginLogs`` answer as plain data (``lines`` and ``last_seq``)."""
    return {
        "last_seq": message.last_seq,
        "lines": [{"seq": line.seq, "time": line.time, "level": line.level,
                   "text": line.text} for line in message.lines],
    }


def cancel_to_pb(job_id: str) -> pb.ServerMessage:
    """The ``CancelJob`` message for ``job_id``."""
    return pb.ServerMessage(cancel_job=pb.CancelJob(job_id=job_id))


# ---------------------------------------------------------------- agent → server


def reported_from_pb(status: Any) -> ReportedPlugin:
    """Decode a ``PluginStatus`` (in a ``Register`` or a ``StatusReport``)."""
    return ReportedPlugin(
        name=status.name, version=status.version, state=wire_word(PluginState, status.state),
        error=status.error, restarts=status.restarts,
        isolation=wire_word(Isolation, status.isolation), sha256=status.sha256,
        error_at=status.error_at or None, errors=status.errors,
        last_collect_at=status.last_collect_at or None, pid=status.pid or None,
        rss=status.rss or None, drift=tuple(status.drift), drift_at=status.drift_at or None,
        local=status.local, limits=status.limits or None, malformed=status.malformed,
    )


def agent_info_from_pb(reg: Any) -> AgentInfo:
    """Decode a ``Register`` message."""
    return AgentInfo(
        agent_id=reg.agent_id, hostname=reg.hostname, ip=reg.ip, os=reg.os, arch=reg.arch,
        agent_version=reg.agent_version, python_version=reg.python_version,
        labels=dict(reg.labels), plugins=[reported_from_pb(p) for p in reg.plugins],
        applied_revision=reg.applied_revision,
        jobs_enabled=reg.jobs_enabled, jobs_allow=tuple(reg.jobs_allow),
    )


def event_from_pb(message: Any) -> JobEventData:
    """Decode a ``JobEvent`` message."""
    return JobEventData(
        job_id=message.job_id,
        status=wire_word(JobStatus, message.status),
        exit_code=message.exit_code if message.has_exit_code else None,
        output_tail=message.output_tail,
        output_size=message.output_size,
        started_at=message.started_at,
        finished_at=message.finished_at,
        error=message.error,
        plugins=tuple(
            RecordData(index=r.index, status=wire_word(RecordStatus, r.status),
                       result_json=r.result_json, error=r.error, started_at=r.started_at,
                       completed_at=r.completed_at)
            for r in message.plugins
        ),
    )
