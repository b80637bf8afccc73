"""The host's end of one child's protocol pipes: a reader thread that dispatches every line.

Why a thread: a child speaks when it likes (pushed ``metric`` lines, ``log``, ``heartbeat``),
not only in answer to a ``call``. :class:`Channel` reads every line the child writes to
its stdout and dispatches it:

* ``hello`` (and an ``error`` before it: the child failed to start) → :meth:`Channel.hello`;
* ``result``/``error`` carrying an ``id`` → the :meth:`Channel.request` waiting for it;
* ``metric`` (one object or a list) → ``on_metrics``; ``log`` → ``on_log(level, text)``;
* ``heartbeat`` → nothing more: every valid line refreshes :attr:`Channel.last_heard`.

A line that is not a valid message (not JSON, no ``type``, an unknown type, a bad metric,
an answer nobody waits for) is logged with the plugin's key and counted in
:attr:`Channel.malformed`; it is never fatal. Once the child said ``hello``, ``hang_timeout``
seconds without a single valid line call ``on_hang`` (the supervisor kills the child: a
hang counts as a crash). The thread ends at the end of the child's output and wakes every
waiter with :class:`ChildExited`.

Writes (requests, config changes, ``shutdown``) go through one lock, so lines from several
threads never interleave.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ._exceptions import ArcadeError, ProtocolError
from ._protocol import LineReader, decode_message, encode_message, write_all
from ._push import parse_log, parse_metrics
from ._types import Metric

__all__ = ["Channel", "ChildExited"]

logger = logging.getLogger("arcade.process")


class ChildExited(ArcadeError):
    """The child's protocol channel ended: it exited or closed the pipe (never leaves
    ``arcade_core``: the supervisor turns it into a restart and a :class:`PluginCallError`)."""


class _Waiter:
    """One answer awaited: a bare lock released once (cheaper than an Event on the hot path
    of every process-plugin call)."""

    __slots__ = ("_lock", "done", "reply")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.done = False
        self.reply: dict[str, Any] | None = None  # None once woken: the child is gone

    def wake(self, reply: dict[str, Any] | None) -> None:
        """Called under the channel's lock, so at most once."""
        if not self.done:
            self.done = True
            self.reply = reply
            self._lock.release()

    def wait(self, timeout: float) -> bool:
        return self._lock.acquire(timeout=timeout)


class Channel:
    """The pipes of one child (see the module docstring). ``on_*`` run on the reader
    thread: they must not block for long."""

    def __init__(
        self,
        key: str,
        stdin_fd: int,
        stdout_fd: int,
        *,
        hang_timeout: float | None,
        on_metrics: Callable[[list[Metric]], None] | None = None,
        on_log: Callable[[str, str], None] | None = None,
        on_hang: Callable[[float], None] | None = None,
    ) -> None:
        self.key = key
        self.hang_timeout = hang_timeout
        self.malformed = 0
        self.last_heard = time.monotonic()
        self._stdin_fd = stdin_fd
        self._reader = LineReader(stdout_fd)
        self._on_metrics = on_metrics
        self._on_log = on_log
        self._on_hang = on_hang
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._waiting: dict[Any, _Waiter] = {}
        self._hello = _Waiter()
        self._greeted = False
        self._ended = False
        self._log = logging.getLogger(f"arcade.plugin.{key}")
        self._thread = threading.Thread(target=self._read_forever, daemon=True,
                                        name=f"arcade-reader-{key}")

    def start(self) -> None:
        self._thread.start()

    @property
    def ended(self) -> bool:
        return self._ended

    def join(self, timeout: float) -> None:
        """Wait for the reader thread to end (not from the reader thread itself)."""
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- writing ---------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Write one message; :class:`ChildExited` when the pipe is closed."""
        data = encode_message(message)
        try:
            with self._write_lock:
                write_all(self._stdin_fd, data)
        except OSError as exc:  # BrokenPipeError, a closed fd
            raise ChildExited(str(exc)) from None

    def hello(self, timeout: float) -> dict[str, Any]:
        """The child's first answer (``hello``, or the ``error`` of a failed start).

        :class:`TimeoutError` after ``timeout`` seconds, :class:`ChildExited` if it ended."""
        if not self._hello.wait(timeout):
            raise TimeoutError(f"no hello within {timeout:g}s")
        if self._hello.reply is None:
            raise ChildExited("end of output")
        return self._hello.reply

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send ``message`` (which carries an ``id``) and return the answer with that id.

        :class:`TimeoutError` after ``timeout`` seconds (the caller kills the child),
        :class:`ChildExited` when it ended."""
        call_id = message["id"]
        waiter = _Waiter()
        with self._lock:
            if self._ended:
                raise ChildExited("end of output")
            self._waiting[call_id] = waiter
        try:
            self.send(message)
            if not waiter.wait(timeout):
                raise TimeoutError(f"no answer within {timeout:g}s")
        finally:
            with self._lock:
                self._waiting.pop(call_id, None)
        if waiter.reply is None:
            raise ChildExited("end of output")
        return waiter.reply

    # -- reading ---------------------------------------------------------------------------

    def _read_forever(self) -> None:
        hung = False
        try:
            while True:
                limit = None
                if self._greeted and not hung and self.hang_timeout is not None:
                    # Malformed lines do not count as heard: measure from the last valid one.
                    limit = max(0.0, self.last_heard + self.hang_timeout - time.monotonic())
                try:
                    line = self._reader.read_line(limit)
                except TimeoutError:
                    if time.monotonic() - self.last_heard < (self.hang_timeout or 0.0):
                        continue
                    hung = True
                    if self._on_hang is not None and self.hang_timeout is not None:
                        self._on_hang(self.hang_timeout)
                    continue
                except ProtocolError as exc:
                    self._bad(str(exc))
                    continue
                if line is None:
                    return
                self._dispatch(line)
        except OSError:  # the pipe was closed under us: the child is being stopped
            return
        except Exception:  # pragma: no cover - a handler's bug must not hang the callers
            logger.exception("the reader of plugin %s failed", self.key)
        finally:
            self._end()

    def _end(self) -> None:
        with self._lock:
            self._ended = True
            for waiter in [*self._waiting.values(), self._hello]:
                waiter.wake(None)

    def _dispatch(self, line: bytes) -> None:
        try:
            message = decode_message(line)
        except ProtocolError as exc:
            self._bad(str(exc))
            return
        kind = message["type"]
        if kind == "metric":
            metrics, problems = parse_metrics(message.get("data"))
            if problems:
                self._bad(f"metric: {'; '.join(problems)}")
            if metrics and self._on_metrics is not None:
                self._on_metrics(metrics)
        elif kind == "heartbeat":
            pass
        elif kind == "log":
            try:
                level, text = parse_log(message)
            except ValueError as exc:
                self._bad(f"log: {exc}")
                return
            if self._on_log is not None:
                self._on_log(level, text)
        elif kind == "hello" or (kind == "error" and not self._greeted):
            if self._greeted:
                self._bad("a second 'hello'")
                return
            self._greeted = True
            with self._lock:
                self._hello.wake(message)
        elif kind in ("result", "error"):
            with self._lock:
                waiter = self._waiting.pop(message.get("id"), None)
                if waiter is not None:
                    waiter.wake(message)
            if waiter is None:
                self._bad(f"{kind!r} for id {message.get('id')!r}, which no call waits for")
                return
        else:
            self._bad(f"unknown message type {kind!r}")
            return
        self.last_heard = time.monotonic()

    def _bad(self, reason: str) -> None:
        self.malformed += 1
        self._log.warning("plugin %s sent a malformed protocol line (%d so far): %s",
                          self.key, self.malformed, reason)
        if self._on_log is not None:
            self._on_log("WARNING", f"malformed protocol line ({self.malformed} so far): "
                                    f"{reason}")
