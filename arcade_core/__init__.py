"""Arcade's core: the plugin contract and the plugin host.

Plugin authors need only :data:`hookimpl` and the value types (:class:`Metric`,
:class:`JobContext`, :class:`JobResult`, :class:`Event`; :class:`MetricPush` is the handle a
plugin pushes metrics through); those import nothing but pluggy,
so a plugin running in a subprocess starts fast. Everything else (the :class:`PluginHost`,
wheel inspection, specs) is loaded on first use.

Public modules for Arcade's own packages (agent, server) and embedders, each with its
``__all__``: :mod:`arcade_core.states` (the shared vocabulary, also exported here),
:mod:`arcade_core.requirements` (offline requirement resolution among published wheels),
:mod:`arcade_core.memory` (giving memory back to the OS in long-running processes) and
:mod:`arcade_core.lazy` (PEP 562 lazy package attributes), :mod:`arcade_core.wheelhouse`
(dependency wheels fetched once into a local wheelhouse); for plugin authors,
:mod:`arcade_core.testing` (the test harness and its pytest plugin). Modules whose names
start with ``_`` are private: nothing outside ``arcade_core`` imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._exceptions import (
    ArcadeError,
    HostClosed,
    InstallError,
    InvalidCall,
    InvalidConfig,
    InvalidSpec,
    InvalidWheel,
    PluginCallError,
    PluginInUse,
    PluginLoadError,
    PluginNotFound,
    ProtocolError,
)
from ._version import __version__
from .lazy import lazy_attributes
from .states import AgentPresence, Isolation, JobStatus, PluginState, RecordStatus, Stage

if TYPE_CHECKING:
    from ._environment import Environment
    from ._host import PluginHost
    from ._inspection import inspect_wheel
    from ._logs import LogLine
    from ._manifest import Manifest
    from ._markers import PROJECT_NAME, hookimpl, hookspec
    from ._push import MetricPush
    from ._spec import PluginSpec, normalize_name, parse_spec
    from ._status import HookOutcome, PluginStatus
    from ._types import Event, JobContext, JobResult, Metric
    from ._wheel import EntryPoint, WheelInfo, WheelLimits


# name -> private module that defines it; imported on first attribute access.
# hookimpl and the value types too: they import pluggy (~15 ms), which `arcade status`
# (arcade_core.commands, a submodule) never needs; a plugin pays for it on first use.
_LAZY = {
    "PROJECT_NAME": "_markers",
    "hookimpl": "_markers",
    "hookspec": "_markers",
    "Event": "_types",
    "JobContext": "_types",
    "JobResult": "_types",
    "Metric": "_types",
    "HookOutcome": "_status",
    "PluginHost": "_host",
    "PluginStatus": "_status",
    "Environment": "_environment",
    "Manifest": "_manifest",
    "PluginSpec": "_spec",
    "parse_spec": "_spec",
    "normalize_name": "_spec",
    "EntryPoint": "_wheel",
    "WheelInfo": "_wheel",
    "WheelLimits": "_wheel",
    "inspect_wheel": "_inspection",
    "LogLine": "_logs",
    "MetricPush": "_push",
}

__all__ = [
    "PROJECT_NAME",
    "AgentPresence",
    "ArcadeError",
    "EntryPoint",
    "Environment",
    "Event",
    "HookOutcome",
    "HostClosed",
    "InstallError",
    "InvalidCall",
    "InvalidConfig",
    "InvalidSpec",
    "InvalidWheel",
    "Isolation",
    "JobContext",
    "JobResult",
    "JobStatus",
    "LogLine",
    "Manifest",
    "Metric",
    "MetricPush",
    "PluginCallError",
    "PluginHost",
    "PluginInUse",
    "PluginLoadError",
    "PluginNotFound",
    "PluginSpec",
    "PluginState",
    "PluginStatus",
    "ProtocolError",
    "RecordStatus",
    "Stage",
    "WheelInfo",
    "WheelLimits",
    "__version__",
    "hookimpl",
    "hookspec",
    "inspect_wheel",
    "normalize_name",
    "parse_spec",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
