"""Arcade built-in plugin ``arcade-memory``: memory and swap usage.

Each ``collect`` reads ``psutil.virtual_memory()`` (and ``psutil.swap_memory()`` unless swap
is turned off in the config); both are cheap, non-blocking reads of ``/proc/meminfo`` (or the
platform's equivalent).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import psutil

from arcade_core import Metric, hookimpl

__all__ = ["Memory"]
__version__ = "1.0.0"


class Memory:
    """Collects ``memory.used``, ``memory.available`` (unit ``bytes``), ``memory.percent``
    (unit ``percent``) and, with ``include_swap`` (default true), ``swap.used`` (``bytes``)
    and ``swap.percent`` (``percent``).

    Config (validated and defaulted by the host against ``arcade-plugin.json``):
    ``include_swap``.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.include_swap = bool(config.get("include_swap", True))

    @hookimpl
    def collect(self) -> list[Metric]:
        """Return the current memory (and swap) usage."""
        now = time.time()
        vm = psutil.virtual_memory()
        metrics = [
            Metric("memory.used", float(vm.used), {}, "bytes", now),
            Metric("memory.available", float(vm.available), {}, "bytes", now),
            Metric("memory.percent", float(vm.percent), {}, "percent", now),
        ]
        if self.include_swap:
            swap = psutil.swap_memory()
            metrics.append(Metric("swap.used", float(swap.used), {}, "bytes", now))
            metrics.append(Metric("swap.percent", float(swap.percent), {}, "percent", now))
        return metrics
