"""Process isolation: the supervisor that keeps one plugin's child process running.

:class:`ProcessPlugin` is the supervisor of one loaded plugin: it forwards calls to the
current child (:class:`~arcade_core._childprocess.ChildProcess`); on a crash (EOF, exit,
broken pipe, or a call past its timeout, which kills the child) it restarts the child in a
background thread with exponential backoff (``restart_backoff * 2**n``), at most
``max_restarts`` times; the counter resets once a child has been healthy for
``healthy_period``. One crash more and the plugin is :attr:`~PluginState.FAILED`. It reports
``plugin.crashed``/``plugin.restarted``/``plugin.failed`` through a callback; restarts
never happen inside a caller's hook call. A child silent for ``hang_timeout`` seconds (no
valid protocol line: a metric, a heartbeat, anything) is killed as hung, and that is a crash
like any other ("no message for 30s: hung").

The same supervisor runs an exec plugin (``executable``: the file its manifest names) and a
Python plugin's host child. :meth:`ProcessPlugin.reconfigure` hands a running child a new
config and interval without a restart: an exec child gets a ``config`` message; the Python
child answers it (a refused config raises :class:`~arcade_core.PluginLoadError` and the old
one stays). Pushed metrics go to ``on_metrics``, ``log`` messages to ``on_log``.

The host registers a proxy for it (:mod:`arcade_core._proxy`); a child sees only
``<home>/host-lib`` of the host (:mod:`arcade_core._hostlib`).
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._childprocess import STOP_GRACE, ChildExited, ChildProcess, tail
from ._exceptions import PluginCallError, PluginLoadError
from ._protocol import to_wire
from ._types import Metric
from .states import PluginState

if TYPE_CHECKING:
    from ._environment import Environment

__all__ = ["ProcessPlugin"]

logger = logging.getLogger("arcade.process")


class ProcessPlugin:
    """One process-isolated plugin: its current child, its state and its restarts.

    ``state`` is :attr:`~PluginState.RUNNING`, :attr:`~PluginState.RESTARTING` (a background
    thread is waiting out the backoff or starting a new child), :attr:`~PluginState.FAILED`
    (restarts exhausted) or :attr:`~PluginState.STOPPED`.
    ``on_event(kind, data)`` hears ``plugin.crashed``, ``plugin.restarted`` and
    ``plugin.failed`` with ``key``, ``name``, ``version``, ``error``, ``restarts``;
    ``on_stderr(line)`` hears every line the children write to stderr (pump threads).
    """

    def __init__(
        self,
        env: Environment,
        key: str,
        config: Mapping[str, Any],
        *,
        host_lib: Path,
        call_timeout: float = 30.0,
        start_timeout: float = 30.0,
        max_restarts: int = 3,
        healthy_period: float = 300.0,
        restart_backoff: float = 0.5,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        on_stderr: Callable[[str], None] | None = None,
        executable: Path | None = None,
        interval: float = 0.0,
        hang_timeout: float | None = None,
        on_metrics: Callable[[list[Metric]], None] | None = None,
        on_log: Callable[[str, str], None] | None = None,
    ) -> None:
        self.env = env
        self.key = key
        self.config = dict(config)
        self.host_lib = host_lib
        self.call_timeout = call_timeout
        self.start_timeout = start_timeout
        self.max_restarts = max_restarts
        self.healthy_period = healthy_period
        self.restart_backoff = restart_backoff
        self._on_event = on_event
        self._on_stderr = on_stderr
        self.executable = executable
        self.interval = interval
        self.hang_timeout = hang_timeout
        self._on_metrics = on_metrics
        self._on_log = on_log
        self.state = PluginState.STOPPED
        self.restarts = 0
        self.last_error = ""
        self.error_at = 0.0  # wall-clock time of last_error
        self.hooks: list[str] = []
        self._child: ChildProcess | None = None
        self._starting: ChildProcess | None = None
        self._malformed_before = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # state
        self._call_lock = threading.Lock()  # one request at a time on the pipe
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- status ----------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.pid if child is not None else None

    @property
    def malformed(self) -> int:
        child = self._child
        return self._malformed_before + (child.malformed if child is not None else 0)

    def _stopped(self) -> bool:
        # A method, not an inline check: the state changes under other threads between checks.
        return self.state is PluginState.STOPPED

    # -- lifecycle -------------------------------------------------------------------------

    def _spawn(self) -> ChildProcess:
        child = ChildProcess(self.env, self.key, self.config, self.host_lib,
                             executable=self.executable, interval=self.interval,
                             hang_timeout=self.hang_timeout, on_exit=self._child_exited,
                             on_stderr=self._on_stderr, on_metrics=self._pushed,
                             on_log=self._on_log, on_hang=self._hung)
        with self._lock:
            if self._stopped() and self._stop.is_set():
                raise PluginLoadError(f"{self.key}: stopped")
            self._starting = child
        try:
            child.start(self.start_timeout)
        finally:
            with self._lock:
                self._starting = None
        return child

    def start(self) -> None:
        """Start the first child; raises :class:`~arcade_core.PluginLoadError` on failure."""
        child = self._spawn()
        with self._lock:
            self._child = child
            self.hooks = child.hooks
            self.state = PluginState.RUNNING
        self._check_alive(child)

    def _check_alive(self, child: ChildProcess) -> None:
        code = child.returncode
        if code is not None:  # died before we installed it: its exit report was ignored
            self._crashed(child, f"the process exited with code {code} right after starting")

    def _child_exited(self, child: ChildProcess, code: int) -> None:
        self._crashed(child, f"the process exited with code {code}{tail(child)}")

    def _hung(self, child: ChildProcess, seconds: float) -> None:
        self._crashed(child, f"no message for {seconds:g}s: hung")

    def _pushed(self, metrics: list[Metric]) -> None:
        """A child's pushed metrics (reader thread): passed on unless the plugin was
        stopped (those of a child still starting count: its constructor may push)."""
        if self._on_metrics is not None and not self._stop.is_set():
            self._on_metrics(metrics)

    def reconfigure(self, config: Mapping[str, Any], interval: float) -> None:
        """Give the running child a new config and interval, without a restart (see the
        module docstring); while it restarts or after it failed, the next child gets them.
        """
        config = dict(config)
        with self._lock:
            child = self._child if self.state is PluginState.RUNNING else None
            if child is None:
                self.config, self.interval = config, interval
                return
        what = f"{self.env.key} (as {self.key!r})"
        if self.executable is not None:
            try:
                child.send(child.config_message(config, interval))
            except ChildExited:
                pass  # it is crashing: the restart starts with the new config
            except TypeError as exc:
                raise PluginLoadError(f"{what}: config cannot be sent to the process: {exc}") \
                    from None
        else:
            self._configure_python_child(child, config, interval)
        with self._lock:
            self.config, self.interval = config, interval
            child.config, child.interval = config, interval

    def _configure_python_child(self, child: ChildProcess, config: dict[str, Any],
                                interval: float) -> None:
        what = f"{self.env.key} (as {self.key!r})"
        limit = self.call_timeout
        if not self._call_lock.acquire(timeout=limit):
            raise PluginLoadError(f"{what}: busy: a call did not finish within {limit:g}s")
        try:
            message = child.config_message(config, interval, next(self._ids))
            reply = child.request(message, limit)
        except TimeoutError:
            reason = f"the new config was not taken within {limit:g}s; the process was killed"
            self._crashed(child, reason)
            raise PluginLoadError(f"{what}: {reason}") from None
        except ChildExited:
            raise PluginLoadError(f"{what}: the process exited while taking the new config"
                                  f"{tail(child)}") from None
        except TypeError as exc:
            raise PluginLoadError(f"{what}: config cannot be sent to the process: {exc}") \
                from None
        finally:
            self._call_lock.release()
        if reply["type"] != "result":
            raise PluginLoadError(f"{what}: the new config was refused: {reply.get('error')}")

    def _crashed(self, child: ChildProcess, reason: str) -> None:
        """Handle the end of ``child`` once (whoever noticed first); schedule a restart."""
        with self._lock:
            if child is not self._child or self.state is not PluginState.RUNNING:
                current = False
            else:
                current = True
                self._child = None
                self._malformed_before += child.malformed
                self.last_error = reason
                self.error_at = time.time()
                if time.monotonic() - child.started_at >= self.healthy_period:
                    self.restarts = 0
                self.state = PluginState.RESTARTING
                thread = threading.Thread(target=self._supervise, args=(child, reason),
                                          name=f"arcade-supervise-{self.key}", daemon=True)
                self._supervisor = thread
        child.mark_stopping()
        child.kill()
        if current:
            logger.warning("plugin %s crashed: %s", self.key, reason)
            thread.start()

    def _supervise(self, old: ChildProcess, reason: str) -> None:
        # The old child is dead: release its pipes once no call is using them.
        with self._call_lock:
            old.close()
        self._emit("plugin.crashed", reason)
        while True:
            with self._lock:
                if self._stopped():
                    return
                if self.restarts >= self.max_restarts:
                    self.state = PluginState.FAILED
                    error = self.last_error
                    failed = True
                else:
                    failed = False
                    delay = self.restart_backoff * 2 ** self.restarts
            if failed:
                logger.error("plugin %s failed for good after %d restarts: %s",
                             self.key, self.restarts, error)
                self._emit("plugin.failed", error)
                return
            if self._stop.wait(delay):
                return
            with self._lock:
                if self._stopped():
                    return
                self.restarts += 1
                attempt = self.restarts
            try:
                child = self._spawn()
            except PluginLoadError as exc:
                with self._lock:
                    if self._stopped():
                        return
                    self.last_error = f"restart {attempt} failed: {exc}"
                    self.error_at = time.time()
                logger.warning("plugin %s: %s", self.key, self.last_error)
                continue
            with self._lock:
                stopped = self._stopped()
                if not stopped:
                    self._child = child
                    self.hooks = child.hooks
                    self.state = PluginState.RUNNING
            if stopped:
                child.stop()
                return
            logger.info("plugin %s restarted (restart %d of %d)", self.key, attempt,
                        self.max_restarts)
            self._emit("plugin.restarted", reason)
            self._check_alive(child)
            return

    def _emit(self, kind: str, error: str) -> None:
        if self._on_event is None:
            return
        data = {"key": self.key, "name": self.env.name, "version": self.env.version,
                "error": error, "restarts": self.restarts}
        try:
            self._on_event(kind, data)
        except Exception:
            logger.exception("event handler for %s (%s) failed", kind, self.key)

    def stop(self) -> None:
        """Stop for good: graceful first, then kill; cancels any pending restart."""
        with self._lock:
            self.state = PluginState.STOPPED
            self._stop.set()
            child, self._child = self._child, None
            starting = self._starting
            supervisor = self._supervisor
        if starting is not None:
            starting.mark_stopping()
            starting.kill()
        if child is not None:
            child.mark_stopping()
            if self._call_lock.acquire(timeout=STOP_GRACE):
                try:
                    child.stop()
                finally:
                    self._call_lock.release()
            else:  # a call is in flight: kill, which ends it, then release the pipes
                child.kill()
                with self._call_lock:
                    child.close()
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout=self.start_timeout + STOP_GRACE)

    # -- calls -----------------------------------------------------------------------------

    def invoke(self, hook: str, kwargs: Mapping[str, Any], timeout: float | None = None) -> Any:
        """Call ``hook`` in the child and return its (decoded) result.

        Raises :class:`~arcade_core.PluginCallError` when the plugin raised, is not running,
        crashed during the call, or did not answer within ``timeout`` (the child is killed
        and restarted in the background).
        """
        limit = self.call_timeout if timeout is None else timeout
        if self.state is not PluginState.RUNNING:
            raise PluginCallError(self.key, hook, self._not_running())
        if not self._call_lock.acquire(timeout=limit):
            raise PluginCallError(self.key, hook,
                                  f"busy: another call did not finish within {limit:g}s")
        try:
            child = self._child
            if child is None or self.state is not PluginState.RUNNING:
                raise PluginCallError(self.key, hook, self._not_running())
            call_id = next(self._ids)
            try:
                message = {"type": "call", "id": call_id, "hook": hook,
                           "kwargs": to_wire(kwargs)}
                reply = child.request(message, limit)
            except TimeoutError:
                reason = f"{hook}() did not answer within {limit:g}s; the process was killed"
                self._crashed(child, reason)
                raise PluginCallError(self.key, hook, reason) from None
            except ChildExited:
                code = child._wait_exit(1.0)
                reason = f"the process exited with code {code} during {hook}(){tail(child)}"
                self._crashed(child, reason)
                raise PluginCallError(self.key, hook, reason) from None
        finally:
            self._call_lock.release()
        if reply["type"] == "result":
            return reply.get("data")
        if reply["type"] == "error":
            raise PluginCallError(self.key, hook, str(reply.get("error")))
        raise PluginCallError(self.key, hook, f"unexpected answer {reply['type']!r}")

    def _not_running(self) -> str:
        text = f"the plugin's process is {self.state}"
        return f"{text} (last error: {self.last_error})" if self.last_error else text


if sys.platform == "win32":  # pragma: no cover
    raise ImportError("process isolation needs a POSIX system")
