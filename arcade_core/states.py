"""Arcade's shared vocabulary: every state, status, stage and mode, defined once.

The agent, the server, the wire and the operator CLI all speak these words; each is a
:class:`~enum.StrEnum`, so a value compares equal to (and serializes as) its lowercase text,
which is what the REST API and the database carry. The protobuf enums of ``arcade.v1`` are
mapped to these in one place, :mod:`arcade_core.rpc.v1.convert`.

Import them from here or from :mod:`arcade_core`; never compare against a raw string.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "FINAL_JOB_STATUSES",
    "FINAL_PLUGIN_STATES",
    "AgentPresence",
    "Isolation",
    "JobStatus",
    "PluginState",
    "RecordStatus",
    "Stage",
]


class PluginState(StrEnum):
    """Where one plugin stands on one agent (reported by the agent, shown to operators).

    ``PENDING`` is the server's word for an assignment the agent has not reported on yet;
    ``RESTARTING`` is a process plugin whose child the supervisor is bringing back;
    ``DEGRADED`` is a loaded plugin whose hook calls failed several times in a row (the
    agent's ``degraded_after``, 3 by default): it is still called, and shows ``running``
    again as soon as a call succeeds. ``UNTRUSTED`` is a loaded plugin whose version is no
    longer signed by a key the agent trusts (its trust config changed since it was installed):
    it keeps running until replaced. ``DRIFTED`` is a plugin whose installed files no longer
    match the hashes of their wheel's RECORD.
    """

    PENDING = "pending"
    DOWNLOADING = "downloading"
    INSTALLING = "installing"
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"
    REMOVED = "removed"
    DEGRADED = "degraded"
    UNTRUSTED = "untrusted"
    DRIFTED = "drifted"


#: States after which an install attempt is over (a ``?wait=`` can return): the plugin was
#: loaded (``degraded`` too: it is loaded, its calls fail; ``untrusted`` too: a config change
#: applied to a running version the agent no longer trusts; ``drifted`` too: it is loaded, its
#: files changed and the agent's policy is to report, not repair) or it failed.
FINAL_PLUGIN_STATES = frozenset({PluginState.RUNNING, PluginState.DEGRADED,
                                 PluginState.UNTRUSTED, PluginState.DRIFTED, PluginState.FAILED})


class Isolation(StrEnum):
    """How a plugin runs: in the host's process, in a supervised child process running
    Arcade's Python plugin host, or (``exec``) as its own executable speaking the JSON line
    protocol of docs/protocol.md. ``exec`` comes from the manifest's ``exec`` key only: an
    exec plugin cannot run inline or under the Python host, and a Python plugin cannot exec."""

    INLINE = "inline"
    PROCESS = "process"
    EXEC = "exec"


class JobStatus(StrEnum):
    """The life of a job: queued on the server, running on its agent, then one final status."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def final(self) -> bool:
        """True once the job is over (nothing will change it again)."""
        return self in FINAL_JOB_STATUSES


FINAL_JOB_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT}
)


class RecordStatus(StrEnum):
    """One plugin entry of a job (its job-plugin record)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class Stage(StrEnum):
    """The stage a job lists a plugin in. ``AFTER``, ``ON_SUCCESS`` and ``ON_FAILURE`` all
    call the ``after`` hook (the last two only for that outcome); ``NOTIFY`` calls ``notify``
    with the ``job.finished`` event."""

    BEFORE = "before"
    AFTER = "after"
    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    NOTIFY = "notify"

    @property
    def hook(self) -> str:
        """The name of the hook this stage calls."""
        if self is Stage.BEFORE:
            return "before"
        if self is Stage.NOTIFY:
            return "notify"
        return "after"


class AgentPresence(StrEnum):
    """Whether an agent has a live stream to the server."""

    ONLINE = "online"
    OFFLINE = "offline"
