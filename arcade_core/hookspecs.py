"""The four hooks an Arcade plugin may implement.

Every hook is optional: a plugin implements the ones it needs, with the argument names
shown here (pluggy matches arguments by name, and a plugin may take fewer of them).
Hooks are plain calls (no wrappers). Each plugin's call is isolated: if one plugin
raises, times out or crashes, the others still run and the failure is recorded against
that plugin only.
"""

from __future__ import annotations

from typing import Any

from ._markers import hookspec
from ._types import Event, JobContext, JobResult, Metric

HOOK_NAMES: tuple[str, ...] = ("collect", "before", "after", "notify")


@hookspec
def collect() -> list[Metric]:  # type: ignore[empty-body]
    """Return the plugin's current measurements.

    When: on the plugin's collect interval (the manifest's ``interval``, else the agent's
    default), and whenever an embedding application calls ``host.hook.collect()``.

    Arguments: none; the plugin reads its own config from ``__init__``.

    Returns: a list of :class:`~arcade_core.Metric` (possibly empty). The host returns
    one list per plugin.
    """


@hookspec
def before(job: JobContext) -> dict[str, Any] | None:
    """Prepare a job before its commands run.

    When: once per ``before`` stage entry of a job, in the stage's ``order``, before
    any command runs.

    Arguments: ``job`` — the :class:`~arcade_core.JobContext` (id, commands, env,
    working directory, this entry's ``plugin_config``).

    Returns: ``None`` or a dict with optional keys ``env`` (a ``str → str`` mapping added
    to the commands' environment), ``workdir`` (where the commands run) and ``outputs``
    (recorded on the job plugin record). Raising aborts the job: its commands are
    skipped and it ends ``failed``.
    """


@hookspec
def after(job: JobContext, result: JobResult) -> dict[str, Any] | None:
    """See the outcome of a job after its commands ran (or were skipped).

    When: after the commands, for the job's ``after`` entries always, ``on_success``
    entries when ``result.succeeded`` and ``on_failure`` entries otherwise.

    Arguments: ``job`` — the :class:`~arcade_core.JobContext`; ``result`` — the
    :class:`~arcade_core.JobResult` (status, exit code, output tail, timing).

    Returns: ``None`` or a dict of outputs recorded on the job plugin record. Raising
    marks this plugin's record ``failed``; it does not change the job's status.
    """


@hookspec
def notify(event: Event) -> None:
    """Hear about something that happened.

    When: a job finished (``job.finished``, to the job's ``notify`` entries), a plugin
    failed for good (``plugin.failed``, to every loaded plugin implementing ``notify``),
    and other host events.

    Arguments: ``event`` — the :class:`~arcade_core.Event` (``kind``, ``data``,
    ``timestamp``).

    Returns: nothing. Raising is recorded and otherwise ignored.
    """
