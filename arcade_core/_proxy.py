"""What the host registers in its PluginManager for a process plugin.

:func:`make_proxy` builds an object with hook methods for exactly the hooks the child
implements, so ``host.hook.collect()`` reaches process plugins like in-process ones; each
method forwards to :meth:`ProcessPlugin.invoke <arcade_core._process.ProcessPlugin.invoke>`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._hookcaller import RemotePlugin
from ._markers import hookimpl
from ._types import Event, JobContext, JobResult, Metric

if TYPE_CHECKING:
    from ._process import ProcessPlugin

__all__ = ["make_proxy"]


class _ProxyBase(RemotePlugin):
    """What the host registers for a process plugin; hook methods are added per plugin."""

    __slots__ = ("_plugin",)

    def __init__(self, plugin: ProcessPlugin) -> None:
        self._plugin = plugin

    @property
    def process(self) -> ProcessPlugin:
        return self._plugin

    def invoke(self, hook: str, kwargs: Mapping[str, Any], timeout: float | None = None) -> Any:
        return self._plugin.invoke(hook, kwargs, timeout)

    def __repr__(self) -> str:
        return f"<process plugin {self._plugin.key!r} ({self._plugin.env.key})>"


_NO_ARGS: dict[str, Any] = {}


@hookimpl
def _collect(self: _ProxyBase) -> list[Metric]:
    value = self._plugin.invoke("collect", _NO_ARGS)
    if value is None:
        return []
    # An exec plugin answers with plain metric objects; the Python child's are tagged.
    return [item if isinstance(item, Metric) else Metric.from_dict(item) for item in value]


@hookimpl
def _before(self: _ProxyBase, job: JobContext) -> dict[str, Any] | None:
    return self._plugin.invoke("before", {"job": job})  # type: ignore[no-any-return]


@hookimpl
def _after(self: _ProxyBase, job: JobContext, result: JobResult) -> dict[str, Any] | None:
    return self._plugin.invoke("after", {"job": job, "result": result})  # type: ignore[no-any-return]


@hookimpl
def _notify(self: _ProxyBase, event: Event) -> None:
    self._plugin.invoke("notify", {"event": event})


_HOOK_METHODS: dict[str, Callable[..., Any]] = {
    "collect": _collect,
    "before": _before,
    "after": _after,
    "notify": _notify,
}
_proxy_classes: dict[frozenset[str], type[_ProxyBase]] = {}


def make_proxy(plugin: ProcessPlugin) -> _ProxyBase:
    """The object to register for ``plugin``: hook methods for exactly its child's hooks."""
    hooks = frozenset(plugin.hooks)
    cls = _proxy_classes.get(hooks)
    if cls is None:
        namespace: dict[str, Any] = {"__slots__": ()}
        namespace.update({name: _HOOK_METHODS[name] for name in sorted(hooks)})
        cls = type("ProcessPluginProxy", (_ProxyBase,), namespace)
        _proxy_classes[hooks] = cls
    return cls(plugin)
