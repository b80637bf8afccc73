"""Resource limits and reaping for one process (or exec) plugin, seen from the host.

A :class:`Limits` belongs to one plugin's supervisor and is handed to each of its children
(:class:`~arcade_core._childprocess.ChildProcess`), which uses it at two points:

* ``start``: :meth:`Limits.command` wraps the plugin's command in the reaper
  (:mod:`arcade_core._reaper`: a per-plugin subreaper, so nothing the plugin starts outlives
  it), and :meth:`Limits.watch` hands the new process to the :mod:`watchdog
  <arcade_core._watchdog>` when a memory or cpu limit is declared;
* ``kill``: :meth:`Limits.kill` kills the whole tree at once — the plugin and every
  descendant, frozen with ``SIGSTOP`` first so none can fork away — then the reaper.

How each limit is enforced (reported as :meth:`Limits.describe`, the status' ``limits``):

* memory: the watchdog sums the RSS of the plugin's process tree twice a second and kills
  the tree past the limit; the crash's reason is then ``memory limit 128Mi exceeded (rss
  140Mi)`` (:attr:`Limits.exceeded`). It counts as a crash: restarted with backoff like any
  other (a slow leak gets a fresh process), ``failed`` after the restarts. An exec plugin
  also gets ``RLIMIT_AS`` at four times the limit (at least the limit + 1Gi) as a backstop
  against a spike between two samples; a Python child does not (its allocator reserves
  address space it never touches, so the rlimit would misfire);
* cpu: measured (the tree's cpu time per second) and logged when over the limit;
* disk: declared only, not enforced.

cgroup v2 (``memory.max``, ``cpu.max``, ``cgroup.kill``) is not used yet: the watchdog and
the reaper work without a delegated cgroup, which agents in containers rarely have.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ._reaper import descendants
from ._watchdog import watchdog
from .resources import Resources, format_bytes, format_cpu

__all__ = ["INLINE_LIMITS", "Limits", "kill_tree"]

logger = logging.getLogger("arcade.limits")

#: The ``limits`` text of an in-process plugin: nothing can be enforced inside the host.
INLINE_LIMITS = "none: runs inside the agent"
_REAPER = Path(__file__).with_name("_reaper.py")
_GIB = 1 << 30
_KILL_WAIT = 2.0


def _freeze(root: int) -> list[int]:
    """``SIGSTOP`` every descendant of ``root`` until no new one appears; their pids."""
    frozen: list[int] = []
    seen: set[int] = set()
    while True:
        fresh = [pid for pid in descendants(root) if pid not in seen]
        if not fresh:
            return frozen
        for pid in fresh:
            seen.add(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
                frozen.append(pid)


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Kill a reaper's whole tree at once and reap the reaper. Idempotent.

    The plugin's processes are frozen, then killed; the reaper, left running, reaps them and
    exits as its plugin did (``-SIGKILL``); if it does not within a moment, it is killed too.
    """
    if sys.platform == "linux" and proc.poll() is None:
        for pid in _freeze(proc.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        try:
            proc.wait(_KILL_WAIT)
        except subprocess.TimeoutExpired:  # pragma: no cover - a wedged reaper
            logger.warning("reaper %d did not exit after its plugin was killed", proc.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # without /proc: the process group at least
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


class Limits:
    """One plugin's declared (or overridden) :class:`~arcade_core.resources.Resources` and
    their enforcement across its successive children.

    ``exec_plugin``: the child is a native executable (gets the ``RLIMIT_AS`` backstop).
    ``on_log(level, text)`` hears what the watchdog has to say (into the plugin's log ring).
    """

    def __init__(
        self,
        key: str,
        resources: Resources | None = None,
        *,
        exec_plugin: bool = False,
        on_log: Callable[[str, str], None] | None = None,
    ) -> None:
        self.key = key
        self.resources = resources or Resources()
        self.exec_plugin = exec_plugin
        self.on_log = on_log
        #: Why the watchdog killed the current child (``None``: it did not).
        self.exceeded: str | None = None
        #: The cpu the plugin's processes used in the last sample, in millicores.
        self.cpu_used: int | None = None
        #: Peak RSS of the plugin's processes seen by the watchdog, in bytes.
        self.rss_peak = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def watched(self) -> bool:
        """Whether the watchdog samples this plugin (a memory or cpu limit is declared)."""
        return self.resources.memory is not None or self.resources.cpu is not None

    def command(self, argv: list[str], python: Path | str | None = None) -> list[str]:
        """``argv`` run under the reaper by ``python`` (the host's interpreter by default)."""
        if sys.platform != "linux":  # pragma: no cover - no subreaper, no /proc
            return list(argv)
        wrapped = [str(python or sys.executable), "-I", "-S", str(_REAPER)]
        memory = self.resources.memory
        if memory is not None and self.exec_plugin:
            wrapped += ["--as", str(max(4 * memory, memory + _GIB))]
        return [*wrapped, "--", *argv]

    def watch(self, proc: subprocess.Popen[bytes]) -> None:
        """A new child has started under the reaper: sample it from now on if limited."""
        self.exceeded = None
        self.cpu_used = None
        self.proc = proc
        if self.watched:
            watchdog().add(self)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """Kill ``proc``'s whole tree (see :func:`kill_tree`) and stop sampling it."""
        if self.proc is proc:
            watchdog().discard(self)
        kill_tree(proc)

    def plugin_pid(self, proc: subprocess.Popen[bytes]) -> int | None:
        """The pid of the plugin's own process (the reaper's child), else the reaper's."""
        if sys.platform != "linux" or proc.returncode is not None:
            return proc.pid
        path = f"/proc/{proc.pid}/task/{proc.pid}/children"
        try:
            with open(path, "rb") as f:
                children = f.read().split()
        except OSError:
            children = [str(pid).encode() for pid in descendants(proc.pid)[:1]]
        return int(children[0]) if children else proc.pid

    def memory_exceeded(self, rss: int) -> None:
        """The watchdog's verdict: the tree uses ``rss`` bytes, over the limit — kill it."""
        proc = self.proc
        limit = self.resources.memory
        if proc is None or limit is None:
            return
        self.exceeded = f"memory limit {format_bytes(limit)} exceeded (rss {format_bytes(rss)})"
        logger.warning("plugin %s: %s; killing its processes", self.key, self.exceeded)
        self._log("ERROR", f"{self.exceeded}; its processes were killed")
        self.kill(proc)

    def cpu_over(self, used: int) -> None:
        """The watchdog's note: the tree used ``used`` millicores, over the cpu limit."""
        limit = self.resources.cpu
        text = (f"cpu use {format_cpu(used)} over the limit {format_cpu(limit or 0)} "
                "(measured, not enforced: no cgroup)")
        logger.info("plugin %s: %s", self.key, text)
        self._log("WARNING", text)

    def _log(self, level: str, text: str) -> None:
        if self.on_log is not None:
            try:
                self.on_log(level, text)
            except Exception:  # pragma: no cover - a listener's bug must not stop the kill
                logger.exception("log listener of %s failed", self.key)

    def describe(self) -> str:
        """The limits in force and how, for the status (``memory 128Mi: watchdog; cpu
        100m: measured``; ``none declared`` when there are none)."""
        parts = []
        res = self.resources
        if res.memory is not None:
            how = "watchdog + rlimit" if self.exec_plugin else "watchdog"
            parts.append(f"memory {format_bytes(res.memory)}: {how}")
        if res.cpu is not None:
            parts.append(f"cpu {format_cpu(res.cpu)}: measured")
        if res.disk is not None:
            parts.append(f"disk {format_bytes(res.disk)}: not enforced")
        return "; ".join(parts) or "none declared"
