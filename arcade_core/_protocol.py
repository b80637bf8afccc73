"""The line protocol between the host and a plugin's subprocess (stdlib only).

Both sides import this module: the host (``_childprocess``) and the child (``_child``), which
runs under the plugin environment's own interpreter with nothing but pluggy and a few
``arcade_core`` modules on its path. Every message is one JSON object on one line, so the
channel stays readable in logs (``strace``, a tee, a debugger)::

    host -> child   {"type": "config", "data": {...plugin config...}}
    child -> host   {"type": "hello", "protocol": 1, "plugin": "cpu", "version": "1.0.0",
                     "hooks": ["collect"], "pid": 4242}
    host -> child   {"type": "call", "id": 7, "hook": "collect", "kwargs": {}}
    child -> host   {"type": "result", "id": 7, "data": [{"$type": "Metric", ...}]}
    child -> host   {"type": "error", "id": 7, "error": "ValueError: boom"}
    host -> child   {"type": "shutdown"}

The host sends ``config`` first (it is the plugin's constructor argument); the child's
first line is its handshake, ``hello`` (or ``error`` if the plugin failed to import or
construct). After that the host sends ``call`` messages and the child answers each with
``result`` or ``error`` carrying the same ``id``. The child exits when its stdin closes, on
``shutdown``, or when its parent dies.

Besides answers, a child speaks whenever it likes (the host's reader thread,
:mod:`arcade_core._channel`, dispatches every line)::

    child -> host   {"type": "metric", "data": {"name": "cpu_usage", "value": 45.2,
                     "timestamp": 1234567890}}          (or a list of such objects)
    child -> host   {"type": "log", "level": "info", "message": "..."}
    child -> host   {"type": "heartbeat"}

and a later ``config`` hands a running child a new config without a restart. An exec plugin
(any executable, docs/protocol.md) gets ``{"type": "config", "data": {...config...,
"interval": 60}}``, answers nothing to it, and may leave ``plugin``/``version`` out of its
hello. The Python child gets the interval and its heartbeat period beside the data —
``{"type": "config", "data": {...}, "interval": 60, "heartbeat": 5}`` — and answers a later
config (which carries an ``id``) with ``result`` or ``error``. Keys a side does not know are
ignored; a line that is not a valid message is logged and counted, never fatal.

Values cross as plain JSON; Arcade's value types (:class:`~arcade_core.Metric`,
:class:`~arcade_core.JobContext`, :class:`~arcade_core.JobResult`,
:class:`~arcade_core.Event`) travel as their ``to_dict()`` plus a ``"$type"`` tag and
are rebuilt with ``from_dict()`` on the far side.
"""

from __future__ import annotations

import json
import os
import select
import time
from typing import Any

from ._exceptions import ProtocolError
from ._types import Event, JobContext, JobResult, Metric

__all__ = [
    "MAX_LINE",
    "PROTOCOL_VERSION",
    "LineReader",
    "decode_message",
    "encode_message",
    "from_wire",
    "to_wire",
    "write_all",
]

PROTOCOL_VERSION = 1

#: The longest line either side accepts (a runaway child must not exhaust the host).
MAX_LINE = 16 * 1024 * 1024

_TYPE_KEY = "$type"
_WIRE_TYPES: dict[str, Any] = {
    "Metric": Metric,
    "JobContext": JobContext,
    "JobResult": JobResult,
    "Event": Event,
}
_TYPE_NAMES: dict[type, str] = {cls: name for name, cls in _WIRE_TYPES.items()}
_SCALARS = (str, int, float, bool, type(None))
# Built once: json.dumps/json.loads with arguments build a new coder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def to_wire(value: Any) -> Any:
    """Return ``value`` as JSON-safe data, tagging Arcade's value types.

    Raises :class:`TypeError` naming the offending type when a value cannot cross the
    process boundary (a plugin returned, say, a socket or a set).
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list or kind is tuple:
        return [to_wire(item) for item in value]
    if kind is dict:
        return {str(key): to_wire(item) for key, item in value.items()}
    if kind is Metric:  # the hot path: collect() results
        return {"name": value.name, "value": value.value, "labels": dict(value.labels),
                "unit": value.unit, "timestamp": value.timestamp, _TYPE_KEY: "Metric"}
    name = _TYPE_NAMES.get(kind)
    if name is not None:
        data = {key: to_wire(item) for key, item in value.to_dict().items()}
        data[_TYPE_KEY] = name
        return data
    # Subclasses (enums, named tuples, OrderedDict...) fall back to their base shape.
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_wire(item) for key, item in value.items()}
    raise TypeError(
        f"a value of type {kind.__module__}.{kind.__qualname__} cannot cross the process "
        "boundary; return JSON-safe data (dict, list, str, number, bool, None) or "
        "Arcade's value types (Metric, JobContext, JobResult, Event)"
    )


def _object_hook(data: dict[str, Any]) -> Any:
    name = data.get(_TYPE_KEY)
    if name is None:
        return data
    cls = _WIRE_TYPES.get(name)
    if cls is None:
        return data
    return cls.from_dict(data)


def from_wire(value: Any) -> Any:
    """Rebuild Arcade's value types inside already-parsed JSON data."""
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    if isinstance(value, dict):
        return _object_hook({key: from_wire(item) for key, item in value.items()})
    return value


_DECODER = json.JSONDecoder(object_hook=_object_hook)
# Most lines carry no tagged value (pushed metrics, heartbeats): no Python hook per object.
_PLAIN_DECODER = json.JSONDecoder()


def encode_message(message: dict[str, Any]) -> bytes:
    """Serialize one message to a single JSON line (with its newline)."""
    return (_ENCODER.encode(message) + "\n").encode()


def decode_message(line: bytes) -> dict[str, Any]:
    """Parse one line into a message, rebuilding value types on the way.

    Raises :class:`~arcade_core.ProtocolError` when the line is not a JSON object with a
    string ``type`` — the caller logs and counts it; it is never fatal by itself.
    """
    try:
        decoder = _DECODER if b'"$type"' in line else _PLAIN_DECODER
        message = decoder.decode(line.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not a JSON line: {_preview(line)} ({exc})") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f"not a protocol message (a JSON object with a 'type'): "
                            f"{_preview(line)}")
    return message


def _preview(line: bytes, limit: int = 120) -> str:
    text = line.decode("utf-8", "replace").rstrip("\n")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (a pipe may accept a partial write)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LineReader:
    """Read newline-terminated lines from a pipe, with an optional timeout.

    Plain blocking reads behind ``poll``: a round trip costs two syscalls on each side
    and no event loop, which is what keeps a subprocess call around 50 µs.
    """

    __slots__ = ("_buffer", "_eof", "_fd", "_poll")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._eof = False
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)

    @property
    def fd(self) -> int:
        return self._fd

    def read_line(self, timeout: float | None = None) -> bytes | None:
        """Return the next line (with its newline), or ``None`` at end of file.

        Raises :class:`TimeoutError` when no full line arrives within ``timeout``
        seconds (``None`` waits for ever), and :class:`~arcade_core.ProtocolError` when a
        line grows past :data:`MAX_LINE` (the partial line is dropped).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            if self._eof:
                if self._buffer:
                    line = bytes(self._buffer)
                    self._buffer.clear()
                    return line
                return None
            if len(self._buffer) > MAX_LINE:
                self._buffer.clear()
                raise ProtocolError(f"a line longer than {MAX_LINE} bytes was dropped")
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._poll.poll(max(1, int(remaining * 1000 + 1))):
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f"no answer within {timeout:g}s")
                    continue
            try:
                chunk = os.read(self._fd, 65536)
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True
