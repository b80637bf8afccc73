"""Arcade's core: the plugin contract and the plugin host.

Plugin authors need only :data:`hookimpl` and the value types (:class:`Metric`,
:class:`JobContext`, :class:`JobResult`, :class:`Event`); those import nothing but pluggy,
so a plugin running in a subprocess starts fast. Everything else (the :class:`PluginHost`,
wheel inspection, specs) is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._exceptions import (
    ArcadeError,
    InstallError,
    InvalidConfig,
    InvalidSpec,
    InvalidWheel,
    PluginCallError,
    PluginLoadError,
    PluginNotFound,
    ProtocolError,
)
from ._lazy import lazy_attributes
from ._markers import hookimpl, hookspec
from ._types import Event, JobContext, JobResult, Metric
from .states import AgentPresence, Isolation, JobStatus, PluginState, RecordStatus, Stage

if TYPE_CHECKING:
    from ._environment import Environment
    from ._host import HookOutcome, PluginHost, PluginStatus
    from ._manifest import Manifest
    from ._spec import PluginSpec, normalize_name, parse_spec
    from ._wheel import EntryPoint, WheelInfo, inspect_wheel

__version__ = "0.1.0"

# name -> private module that defines it; imported on first attribute access.
_LAZY = {
    "HookOutcome": "_host",
    "PluginHost": "_host",
    "PluginStatus": "_host",
    "Environment": "_environment",
    "Manifest": "_manifest",
    "PluginSpec": "_spec",
    "parse_spec": "_spec",
    "normalize_name": "_spec",
    "EntryPoint": "_wheel",
    "WheelInfo": "_wheel",
    "inspect_wheel": "_wheel",
}

__all__ = [
    "AgentPresence",
    "ArcadeError",
    "EntryPoint",
    "Environment",
    "Event",
    "HookOutcome",
    "InstallError",
    "InvalidConfig",
    "InvalidSpec",
    "InvalidWheel",
    "Isolation",
    "JobContext",
    "JobResult",
    "JobStatus",
    "Manifest",
    "Metric",
    "PluginCallError",
    "PluginHost",
    "PluginLoadError",
    "PluginNotFound",
    "PluginSpec",
    "PluginState",
    "PluginStatus",
    "ProtocolError",
    "RecordStatus",
    "Stage",
    "WheelInfo",
    "__version__",
    "hookimpl",
    "hookspec",
    "inspect_wheel",
    "normalize_name",
    "parse_spec",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
