"""The memory and cpu watchdog: one daemon thread per host process, sampling ``/proc``.

Every :data:`INTERVAL` seconds, while at least one limited plugin runs, it walks each
watched tree (``/proc/<pid>/task/*/children`` from the reaper down, cheap: no scan of every
process unless the kernel lacks those files), reads its processes' ``stat`` (cpu times,
RSS), and sums each :class:`Watched` (a :class:`~arcade_core._limits.Limits`) plugin's
tree below the reaper: over the memory limit, ``memory_exceeded`` kills the tree; the cpu used since
the last sample (own and reaped children's time) becomes ``cpu_used``, noted when over the
cpu limit. No psutil: ``arcade_core`` needs none. With nothing to watch the thread waits,
costing nothing.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ._reaper import descendants, stat_fields
from .resources import Resources

__all__ = ["INTERVAL", "ProcSample", "Watchdog", "Watched", "sample", "watchdog"]

logger = logging.getLogger("arcade.limits")

#: Seconds between two samples.
INTERVAL = 0.5
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSample:
    """One process at one sample: its parent, RSS (bytes), own and reaped-children cpu
    (seconds)."""

    ppid: int
    rss: int
    cpu: float
    children_cpu: float


def sample(pids: Iterable[int] | None = None) -> dict[int, ProcSample]:
    """``pids`` (default: every process in ``/proc``) now; those that vanish while read are
    skipped."""
    out: dict[int, ProcSample] = {}
    names = [str(pid) for pid in pids] if pids is not None else os.listdir("/proc")
    for name in names:
        fields = stat_fields(name) if name.isdigit() else None
        if fields is None or len(fields) < 22:
            continue
        out[int(name)] = ProcSample(
            ppid=int(fields[1]), rss=int(fields[21]) * _PAGE,
            cpu=(int(fields[11]) + int(fields[12])) / _TICKS,
            children_cpu=(int(fields[13]) + int(fields[14])) / _TICKS,
        )
    return out


class Watched(Protocol):
    """What the watchdog needs of a plugin's limits (:class:`~arcade_core._limits.Limits`)."""

    resources: Resources
    proc: subprocess.Popen[bytes] | None
    rss_peak: int
    cpu_used: int | None

    def memory_exceeded(self, rss: int) -> None: ...

    def cpu_over(self, used: int) -> None: ...


class Watchdog:
    """The sampling thread and the limits it watches (see the module docstring)."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._watched: set[Watched] = set()
        self._cpu: dict[Watched, tuple[float, float]] = {}  # last (monotonic, cpu seconds)
        self._over_cpu: set[Watched] = set()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def add(self, limits: Watched) -> None:
        """Sample ``limits``' current child from now on."""
        with self._lock:
            self._watched.add(limits)
            self._cpu.pop(limits, None)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="arcade-watchdog",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()

    def discard(self, limits: Watched) -> None:
        """Stop sampling ``limits`` (its child is being killed or has stopped)."""
        with self._lock:
            self._watched.discard(limits)
            self._cpu.pop(limits, None)
            self._over_cpu.discard(limits)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._watched:
                    self._wake.wait()
            started = time.monotonic()
            try:
                self.check()
            except Exception:  # pragma: no cover - keep watching whatever happened
                logger.exception("the resource watchdog failed a round")
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def check(self) -> None:
        """One round: sample ``/proc``, then judge every watched plugin."""
        with self._lock:
            watched = list(self._watched)
        now = time.monotonic()
        for limits in watched:
            proc = limits.proc
            tree = descendants(proc.pid) if proc is not None else []
            procs = sample([proc.pid, *tree]) if proc is not None else {}
            if proc is None or proc.returncode is not None or proc.pid not in procs:
                self.discard(limits)
                continue
            rss, cpu = 0, procs[proc.pid].children_cpu  # the reaper's own use is not counted
            for pid in tree:
                seen = procs.get(pid)
                if seen is not None:
                    rss += seen.rss
                    cpu += seen.cpu + seen.children_cpu
            limits.rss_peak = max(limits.rss_peak, rss)
            memory = limits.resources.memory
            if memory is not None and rss > memory:
                self.discard(limits)
                limits.memory_exceeded(rss)
                continue
            self._judge_cpu(limits, now, cpu)

    def _judge_cpu(self, limits: Watched, now: float, cpu: float) -> None:
        last = self._cpu.get(limits)
        self._cpu[limits] = (now, cpu)
        if last is None or now <= last[0]:
            return
        used = max(0, round((cpu - last[1]) / (now - last[0]) * 1000))
        limits.cpu_used = used
        limit = limits.resources.cpu
        if limit is None:
            return
        if used > limit and limits not in self._over_cpu:
            self._over_cpu.add(limits)
            limits.cpu_over(used)
        elif used <= limit:
            self._over_cpu.discard(limits)


_watchdog: Watchdog | None = None
_create = threading.Lock()


def watchdog() -> Watchdog:
    """The process' one watchdog, made on first use."""
    global _watchdog
    with _create:
        if _watchdog is None:
            _watchdog = Watchdog()
        return _watchdog
