"""The subprocess plugin host: one plugin, one process, one JSON-lines channel.

Run by the host as ``<env>/bin/python -P -m arcade_core._child <entry-point> <name>
<version>`` with ``PYTHONPATH`` pointing at ``<home>/host-lib`` (symlinks to the host's
``arcade_core`` and ``pluggy``: the only host code the child can see). It imports only
pluggy and Arcade's small stdlib-only modules, so it starts in a few tens of
milliseconds.

Before any plugin code runs, the protocol channel is moved out of the plugin's reach:
fds 0 and 1 are duplicated for the protocol, then fd 0 is pointed at ``/dev/null`` and
fd 1 (and ``sys.stdout``) at stderr, so a plugin that prints (or reads stdin) cannot
corrupt the channel; the host logs the child's stderr line by line.

The messages are described in :mod:`arcade_core._protocol`. The child exits when its
stdin closes, on a ``shutdown`` message, or when its parent dies (``getppid`` watch).

Besides answering calls it speaks on its own: a plugin class that takes a ``metrics``
keyword gets a :class:`~arcade_core._push.MetricPush` whose pushes become ``metric`` lines;
a thread says ``heartbeat`` whenever nothing was written for the period the host asked for
(the config message's ``heartbeat``), so an idle child is not taken for hung — a child whose
interpreter is stuck (the GIL held by a runaway C call) says nothing and is. A later
``config`` message applies a new config without a restart: ``plugin.configure(config)`` when
the plugin object has such a method, else a new instance is constructed and swapped in (the
old one is kept if that fails); the answer is a ``result``/``error`` with the message's id.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import pluggy

from . import hookspecs
from ._exceptions import ArcadeError, ProtocolError
from ._hookcaller import check_plugin, describe_error
from ._loader import instantiate, load_target
from ._markers import PROJECT_NAME
from ._protocol import (
    PROTOCOL_VERSION,
    LineReader,
    decode_message,
    encode_message,
    from_wire,
    to_wire,
    write_all,
)
from ._push import MetricPush
from ._types import Metric

_PARENT_POLL = 0.5  # seconds between getppid checks


class _Channel:
    """The protocol fds, taken before the plugin runs; writes are serialized (the main
    loop, the heartbeat thread and a plugin's pushing threads all write)."""

    def __init__(self) -> None:
        self.in_fd = os.dup(0)
        self.out_fd = os.dup(1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(2, 1)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
        sys.stdout = sys.stderr
        self.reader = LineReader(self.in_fd)
        self.lock = threading.Lock()
        self.last_sent = time.monotonic()

    def send(self, message: dict[str, Any]) -> None:
        data = encode_message(message)
        with self.lock:
            write_all(self.out_fd, data)
            self.last_sent = time.monotonic()

    def push(self, metrics: list[Metric]) -> None:
        """A :class:`MetricPush` sink: one ``metric`` line for the batch."""
        self.send({"type": "metric", "data": [
            {"name": m.name, "value": m.value, "labels": m.labels, "unit": m.unit,
             "timestamp": m.timestamp} for m in metrics]})


def _heartbeat(channel: _Channel, period: float) -> None:
    """Say ``heartbeat`` whenever nothing was written for ``period`` seconds."""
    while True:
        idle = time.monotonic() - channel.last_sent
        if idle >= period:
            try:
                channel.send({"type": "heartbeat"})
            except OSError:  # the host is gone; the parent watch ends us
                return
            idle = 0.0
        time.sleep(period - idle)


def _watch_parent(ppid: int) -> None:
    while True:
        time.sleep(_PARENT_POLL)
        if os.getppid() != ppid:
            os._exit(0)


_Impl = tuple[Callable[..., Any], tuple[str, ...], tuple[str, ...]]


def _load(entry_point: str, name: str, config: dict[str, Any], metrics: MetricPush
          ) -> tuple[object, dict[str, _Impl]]:
    module, _, attr = entry_point.partition(":")
    target = load_target(module.strip(), attr.strip() or None)
    plugin = instantiate(target, config, metrics)
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    check_plugin(pm, plugin, name)
    pm.register(plugin, name=name)
    impls: dict[str, _Impl] = {}
    for hook in hookspecs.HOOK_NAMES:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            impls[hook] = (impl.function, tuple(impl.argnames), tuple(impl.kwargnames))
    return plugin, impls


def _answer_call(channel: _Channel, message: dict[str, Any], impls: dict[str, _Impl]) -> None:
    call_id = message.get("id")
    hook = message.get("hook")
    found = impls.get(hook) if isinstance(hook, str) else None
    if found is None:
        channel.send({"type": "error", "id": call_id,
                      "error": f"ProtocolError: this plugin does not implement {hook!r}"})
        return
    function, argnames, kwargnames = found
    kwargs = message.get("kwargs") or {}
    try:
        extra = {name: kwargs[name] for name in kwargnames if name in kwargs}
        value = function(*[kwargs[name] for name in argnames], **extra)
        data = to_wire(value)
    except (Exception, SystemExit) as exc:
        traceback.print_exc(file=sys.stderr)
        channel.send({"type": "error", "id": call_id, "error": describe_error(exc)})
        return
    channel.send({"type": "result", "id": call_id, "data": data})


def _reconfigure(channel: _Channel, message: dict[str, Any], entry_point: str, name: str,
                 current: tuple[object, dict[str, _Impl]], metrics: MetricPush
                 ) -> tuple[object, dict[str, _Impl]]:
    """Apply a later ``config`` message; returns the plugin and hooks now in force."""
    call_id = message.get("id")
    interval = message.get("interval")
    try:
        config = from_wire(message.get("data") or {})
        if not isinstance(config, dict):
            raise ProtocolError("a config message's data must be an object")
        plugin = current[0]
        configure = getattr(plugin, "configure", None)
        if callable(configure):
            configure(config)
        else:
            current = _load(entry_point, name, config, metrics)
    except (Exception, SystemExit) as exc:
        traceback.print_exc(file=sys.stderr)
        channel.send({"type": "error", "id": call_id, "error": describe_error(exc)})
        return current
    if isinstance(interval, int | float) and not isinstance(interval, bool):
        metrics.interval = float(interval)
    channel.send({"type": "result", "id": call_id, "data": None})
    return current


def main(argv: list[str] | None = None) -> int:
    """Serve one plugin until stdin closes; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m arcade_core._child ENTRY_POINT NAME VERSION", file=sys.stderr)
        return 2
    entry_point, name, version = args
    channel = _Channel()
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True,
                     name="arcade-parent-watch").start()

    line = channel.reader.read_line()
    if line is None:
        return 0
    try:
        first = decode_message(line)
        if first["type"] != "config" or not isinstance(first.get("data", {}), dict):
            raise ProtocolError(f"expected a 'config' message first, got {first['type']!r}")
        config = from_wire(first.get("data") or {})
        interval = first.get("interval")
        metrics = MetricPush(channel.push, float(interval) if isinstance(
            interval, int | float) and not isinstance(interval, bool) else 0.0)
        current = _load(entry_point, name, config, metrics)
    except (Exception, SystemExit) as exc:
        traceback.print_exc(file=sys.stderr)
        error = str(exc) if isinstance(exc, ArcadeError) else describe_error(exc)
        channel.send({"type": "error", "id": None, "error": error})
        return 1
    channel.send({"type": "hello", "protocol": PROTOCOL_VERSION, "plugin": name,
                  "version": version, "hooks": sorted(current[1]), "pid": os.getpid()})
    period = first.get("heartbeat")
    if isinstance(period, int | float) and not isinstance(period, bool) and period > 0:
        threading.Thread(target=_heartbeat, args=(channel, float(period)), daemon=True,
                         name="arcade-heartbeat").start()

    while True:
        line = channel.reader.read_line()
        if line is None:
            return 0
        try:
            message = decode_message(line)
        except ProtocolError as exc:
            print(f"arcade child: ignoring malformed line: {exc}", file=sys.stderr)
            continue
        kind = message["type"]
        if kind == "call":
            _answer_call(channel, message, current[1])
        elif kind == "config":
            current = _reconfigure(channel, message, entry_point, name, current, metrics)
        elif kind == "shutdown":
            return 0
        else:
            channel.send({"type": "error", "id": message.get("id"),
                          "error": f"ProtocolError: unexpected message type {kind!r}"})


if __name__ == "__main__":
    sys.exit(main())
