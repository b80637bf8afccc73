"""One job on this agent, as data: its plugin entries decoded from the wire, what happened
to each (its record), and the run as a whole, each able to say itself as a ``JobEvent``."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from arcade_core import ProtocolError
from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import from_pb, to_pb
from arcade_core.signing import Signature
from arcade_core.states import Isolation, JobStatus, RecordStatus, Stage

from .errors import InvalidBeforeResult

__all__ = [
    "OUTPUT_LIMIT",
    "Entry",
    "OutputTail",
    "Record",
    "Run",
    "decode",
    "merge_before",
    "result_json",
    "sorted_entries",
]

#: Bytes of output kept per job (the end of it).
OUTPUT_LIMIT = 64 * 1024


class OutputTail:
    """The last ``limit`` bytes of a job's output, and how many bytes there were in all."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self.limit = limit
        self.size = 0
        self._buf = bytearray()

    def add(self, data: bytes) -> None:
        """Append ``data``, dropping the oldest bytes beyond the limit."""
        self.size += len(data)
        self._buf += data
        if len(self._buf) > self.limit:
            del self._buf[: len(self._buf) - self.limit]

    def text(self, limit: int | None = None) -> str:
        """The kept tail (its last ``limit`` bytes), decoded leniently."""
        data = bytes(self._buf if limit is None else self._buf[-limit:])
        return data.decode("utf-8", "replace")



@dataclass(slots=True)
class Entry:
    """One plugin entry of a job, decoded from the wire (``problem``: why it cannot run;
    ``stage`` ``None``: the wire named none this agent knows)."""

    index: int
    name: str
    version: str
    stage: Stage | None
    order: int
    config: dict[str, Any]
    isolation: Isolation | None
    refs: tuple[pb.WheelRef, ...]
    key: str
    problem: str = ""
    #: Its version's signatures, checked against the agent's trusted keys before anything
    #: is downloaded (as for an installed plugin).
    signatures: tuple[Signature, ...] = ()

    @property
    def hook(self) -> str:
        """The hook this entry's stage calls (``""`` for an unknown stage)."""
        return self.stage.hook if self.stage is not None else ""


@dataclass(slots=True)
class Record:
    """What happened to one entry, as reported to the server."""

    index: int
    plugin: str
    version: str
    stage: Stage
    order: int
    status: RecordStatus = RecordStatus.PENDING
    result_json: str = ""
    error: str = ""
    started_at: float = 0.0
    completed_at: float = 0.0

    def to_pb(self) -> pb.JobPluginRecord:
        """The record as the wire's ``JobPluginRecord``."""
        return pb.JobPluginRecord(
            index=self.index, plugin=self.plugin, version=self.version,
            stage=to_pb(self.stage), order=self.order,
            status=to_pb(self.status), result_json=self.result_json,
            error=self.error, started_at=self.started_at, completed_at=self.completed_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data (for the agent's status API)."""
        return {
            "index": self.index, "plugin": self.plugin, "version": self.version,
            "stage": self.stage, "order": self.order, "status": self.status,
            "result": json.loads(self.result_json) if self.result_json else None,
            "error": self.error, "started_at": self.started_at or None,
            "completed_at": self.completed_at or None,
        }


@dataclass(eq=False)
class Run:
    """One job on this agent, from arrival to its final event."""

    job_id: str
    commands: list[str]
    env: dict[str, str]
    timeout: float
    entries: list[Entry]
    records: dict[int, Record]
    output: OutputTail
    status: JobStatus = JobStatus.QUEUED
    exit_code: int | None = None
    error: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    finished_mono: float = 0.0
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str = ""
    delivered: bool = False
    task: asyncio.Task[None] | None = None
    loaded: dict[int, str] = field(default_factory=dict)
    emit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def event(self) -> pb.JobEvent:
        """The whole picture as one ``JobEvent`` (any one is enough to update the server)."""
        return pb.JobEvent(
            job_id=self.job_id, status=to_pb(self.status),
            exit_code=self.exit_code or 0, has_exit_code=self.exit_code is not None,
            output_tail=self.output.text(), output_size=self.output.size,
            started_at=self.started_at, finished_at=self.finished_at, error=self.error,
            plugins=[self.records[i].to_pb() for i in sorted(self.records)],
        )

    def to_dict(self) -> dict[str, Any]:
        """The run as plain data (for the agent's status API)."""
        return {
            "job_id": self.job_id, "status": self.status, "exit_code": self.exit_code,
            "error": self.error, "started_at": self.started_at or None,
            "finished_at": self.finished_at or None, "output_size": self.output.size,
            "plugins": [self.records[i].to_dict() for i in sorted(self.records)],
        }


def sorted_entries(entries: Sequence[Entry]) -> list[Entry]:
    """``entries`` in call order: by ``order``, then index."""
    return sorted(entries, key=lambda e: (e.order, e.index))


def result_json(value: Any) -> str:
    """A hook's return value as the JSON text of its record (``""`` for ``None``)."""
    if value is None:
        return ""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError) as exc:
        return json.dumps(f"<result not JSON: {exc}>")


def decode(job: pb.Job) -> tuple[list[Entry], dict[int, Record]]:
    """A job's plugin entries and their (pending) records; an entry that cannot run says
    why in its ``problem``."""
    entries: list[Entry] = []
    records: dict[int, Record] = {}
    for plugin in job.plugins:
        problem = ""
        config: dict[str, Any] = {}
        try:
            loaded = json.loads(plugin.config_json) if plugin.config_json else {}
        except ValueError as exc:
            problem = f"config_json is not valid JSON: {exc}"
        else:
            if isinstance(loaded, dict):
                config = loaded
            else:
                problem = "config_json is not a JSON object"
        stage: Stage | None
        isolation: Isolation | None
        try:
            stage = from_pb(Stage, plugin.stage)
            isolation = from_pb(Isolation, plugin.isolation)
        except ProtocolError as exc:
            stage, isolation, problem = None, None, str(exc)
        if stage is None:
            problem = problem or f"unknown stage {plugin.stage!r}"
        elif not plugin.wheels:
            problem = "the job lists no wheels for it"
        if plugin.index in records:
            problem = f"entry index {plugin.index} appears twice"
        entry = Entry(
            index=plugin.index, name=plugin.name, version=plugin.version, stage=stage,
            order=plugin.order, config=config, isolation=isolation,
            refs=tuple(plugin.wheels), key=f"job:{job.job_id}:{plugin.index}", problem=problem,
            signatures=tuple(Signature(s.key_id, bytes(s.signature)) for s in plugin.signatures),
        )
        entries.append(entry)
        records.setdefault(plugin.index, Record(plugin.index, plugin.name, plugin.version,
                                                stage or Stage.BEFORE, plugin.order))
    return entries, records


def merge_before(value: Any, env: dict[str, str], outputs: dict[str, Any], workdir: str
                 ) -> str:
    """Apply what a ``before`` hook returned; :class:`InvalidBeforeResult` for a wrong shape.
    Returns the working directory from now on."""
    if value is None:
        return workdir
    if not isinstance(value, Mapping):
        raise InvalidBeforeResult(
            f"before() returned a {type(value).__name__}; it must return None or "
            "a dict with any of env, workdir and outputs")
    extra = value.get("env") or {}
    if not isinstance(extra, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        raise InvalidBeforeResult("before() returned an env that is not a mapping of str to str")
    new_workdir = value.get("workdir")
    if new_workdir is not None and (not isinstance(new_workdir, str) or not new_workdir):
        raise InvalidBeforeResult(
            "before() returned a workdir that is not a non-empty path string")
    more = value.get("outputs") or {}
    if not isinstance(more, Mapping):
        raise InvalidBeforeResult("before() returned outputs that are not a mapping")
    env.update(extra)
    outputs.update(more)
    # A relative workdir is taken from the current one (an absolute one replaces it).
    return os.path.join(workdir, new_workdir) if new_workdir else workdir
