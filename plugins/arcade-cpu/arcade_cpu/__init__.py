"""Arcade built-in plugin ``arcade-cpu``: CPU usage and load average.

Each ``collect`` reports the busy percentage of every CPU and of all of them together since
the previous ``collect`` (the first one covers the time since the plugin was constructed),
and the 1, 5 and 15 minute load averages. Reading is non-blocking: the plugin keeps its own
baseline of CPU times, so two instances (or another plugin calling ``psutil.cpu_percent``
in the same process) never shorten each other's measuring interval, as psutil's shared,
module-global baseline would.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import psutil

from arcade_core import Metric, hookimpl

__all__ = ["Cpu"]
__version__ = "1.0.0"


def _busy_and_total(times: NamedTuple) -> tuple[float, float]:
    """Busy and total seconds of one CPU's counters, counted the way psutil does.

    ``guest`` and ``guest_nice`` are already included in ``user`` and ``nice`` on Linux, so
    they are left out of the total; ``idle`` and ``iowait`` are not busy time.
    """
    values = times._asdict()
    total = sum(values.values()) - values.get("guest", 0.0) - values.get("guest_nice", 0.0)
    busy = total - values["idle"] - values.get("iowait", 0.0)
    return busy, total


def _percent(busy: float, total: float) -> float:
    """Busy share of ``total`` as a percentage, 0.0 when no time passed, within 0-100."""
    if total <= 0.0 or busy <= 0.0:
        return 0.0
    return round(min(100.0, busy / total * 100.0), 1)


class Cpu:
    """Collects ``cpu.percent`` (labels ``cpu=total|0|1|…``, unit ``percent``) and
    ``cpu.load1``, ``cpu.load5``, ``cpu.load15``.

    Config (validated and defaulted by the host against ``arcade-plugin.json``):
    ``percpu`` (default true) adds one ``cpu.percent`` metric per CPU beside the total;
    ``load_average`` (default true) adds the load averages.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.percpu = bool(config.get("percpu", True))
        self.load_average = bool(config.get("load_average", True))
        # Priming read: the first collect measures from here, without sleeping.
        self._last: Sequence[tuple[float, float]] = self._read()

    @staticmethod
    def _read() -> list[tuple[float, float]]:
        return [_busy_and_total(t) for t in psutil.cpu_times(percpu=True)]

    @hookimpl
    def collect(self) -> list[Metric]:
        """Return CPU usage since the previous call, and the load averages."""
        now = time.time()
        current = self._read()
        previous, self._last = self._last, current
        metrics: list[Metric] = []
        if len(previous) == len(current):  # a CPU came or went: skip one round, re-baselined
            deltas = [
                (b2 - b1, t2 - t1) for (b1, t1), (b2, t2) in zip(previous, current, strict=True)
            ]
            busy = sum(d[0] for d in deltas)
            total = sum(d[1] for d in deltas)
            metrics.append(
                Metric("cpu.percent", _percent(busy, total), {"cpu": "total"}, "percent", now)
            )
            if self.percpu:
                metrics.extend(
                    Metric("cpu.percent", _percent(b, t), {"cpu": str(i)}, "percent", now)
                    for i, (b, t) in enumerate(deltas)
                )
        if self.load_average:
            for minutes, value in zip((1, 5, 15), psutil.getloadavg(), strict=True):
                metrics.append(Metric(f"cpu.load{minutes}", float(value), {}, "", now))
        return metrics
