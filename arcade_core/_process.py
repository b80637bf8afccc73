"""Process isolation: the child process, its proxy, and the supervisor that restarts it.

* :class:`ChildProcess` — one running child (``env.python -m arcade_core._child``): spawns
  it, performs the handshake, sends one request at a time over plain blocking pipes with
  ``poll`` for the timeout, pumps its stderr into the host's log, and stops it (a
  ``shutdown`` message and closed stdin first, then a kill of its whole process group).
* :class:`ProcessPlugin` — the supervisor of one loaded plugin: forwards calls to the
  current child; on a crash (EOF, exit, broken pipe, or a call past its timeout, which
  kills the child) it restarts the child in a background thread with exponential backoff
  (``restart_backoff * 2**n``), at most ``max_restarts`` times; the counter resets once a
  child has been healthy for ``healthy_period``. One crash more and the plugin is
  ``failed``. It reports ``plugin.crashed``/``plugin.restarted``/``plugin.failed``
  through a callback; restarts never happen inside a caller's hook call.
* :func:`make_proxy` — the object registered in the host's PluginManager, with hook
  methods for exactly the hooks the child implements, so ``host.hook.collect()`` reaches
  process plugins like in-process ones.
* :func:`ensure_host_lib` — ``<home>/host-lib``: symlinks to the host's ``arcade_core``
  and ``pluggy`` packages, the only host code a child can import.

Every child is also tracked for ``atexit``: no child outlives the host process.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import itertools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

import arcade_core

from ._exceptions import PluginCallError, PluginLoadError, ProtocolError
from ._hookcaller import RemotePlugin
from ._markers import hookimpl
from ._protocol import PROTOCOL_VERSION, LineReader, decode_message, encode_message, to_wire
from ._protocol import write_all as _write_all
from ._types import Event, JobContext, JobResult, Metric
from .hookspecs import HOOK_NAMES

if TYPE_CHECKING:
    from ._environment import Environment

__all__ = [
    "ChildExited",
    "ChildProcess",
    "ProcessPlugin",
    "ensure_host_lib",
    "make_proxy",
]

logger = logging.getLogger("arcade.process")

#: Seconds a child gets to exit after ``shutdown`` before it is killed.
STOP_GRACE = 1.0
_TAIL_LINES = 20

_live: weakref.WeakSet[ChildProcess] = weakref.WeakSet()
_atexit_registered = False
_atexit_lock = threading.Lock()


def _kill_all_children() -> None:
    """``atexit``: kill whatever children are still alive (their process groups too)."""
    for child in list(_live):
        with contextlib.suppress(Exception):
            child.kill()


def _track(child: ChildProcess) -> None:
    global _atexit_registered
    with _atexit_lock:
        if not _atexit_registered:
            atexit.register(_kill_all_children)
            _atexit_registered = True
        _live.add(child)


# ---------------------------------------------------------------------------------------------
# host-lib


def ensure_host_lib(home: Path) -> Path:
    """Return ``<home>/host-lib``, creating or refreshing it atomically.

    It holds two symlinks, ``arcade_core`` and ``pluggy``, to the packages this host runs;
    a child gets it (and nothing else of the host's site-packages) on its ``PYTHONPATH``.
    Built in a temp dir and renamed into place, so a reader never sees it half made.
    """
    target = home / "host-lib"
    wanted = {
        "arcade_core": os.path.realpath(os.path.dirname(arcade_core.__file__)),
        "pluggy": os.path.realpath(os.path.dirname(pluggy.__file__)),
    }

    def current() -> bool:
        try:
            return all(os.readlink(target / name) == path for name, path in wanted.items())
        except OSError:
            return False

    if current():
        return target
    home.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".host-lib-", dir=home))
    try:
        for name, path in wanted.items():
            os.symlink(path, tmp / name, target_is_directory=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if current():  # another host sharing this home won the race
                return target
            trash = Path(tempfile.mkdtemp(prefix=".host-lib-old-", dir=home))
            os.rename(target, trash / "host-lib")
            os.rename(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _child_environment(host_lib: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(host_lib)
    env["PYTHONIOENCODING"] = "utf-8"
    return env


# ---------------------------------------------------------------------------------------------
# one child


class ChildExited(Exception):
    """The child's protocol channel ended: it exited or closed the pipe."""


class ChildProcess:
    """One running child for one plugin version and config.

    :meth:`request` is not thread-safe: the owner (:class:`ProcessPlugin`) sends one
    request at a time. :meth:`kill` may be called from any thread.
    """

    def __init__(
        self,
        env: Environment,
        key: str,
        config: Mapping[str, Any],
        host_lib: Path,
        *,
        on_exit: Callable[[ChildProcess, int], None] | None = None,
    ) -> None:
        self.env = env
        self.key = key
        self.config = dict(config)
        self.host_lib = host_lib
        self.hooks: list[str] = []
        self.malformed = 0
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self.started_at = 0.0
        self.start_seconds = 0.0
        self._on_exit = on_exit
        self._stopping = False
        self._closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: LineReader | None = None
        self._stdin_fd = -1
        self._stderr_thread: threading.Thread | None = None
        self._log = logging.getLogger(f"arcade.plugin.{key}")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def command(self) -> list[str]:
        ep = self.env.entry_point
        value = f"{ep.module}:{ep.attr}" if ep.attr else ep.module
        return [str(self.env.python), "-P", "-m", "arcade_core._child", value,
                self.env.name, self.env.version]

    def start(self, timeout: float) -> None:
        """Spawn the child, send its config and wait for its ``hello``.

        Raises :class:`~arcade_core.PluginLoadError` saying why the plugin did not come up
        (its import error, its exit code and last stderr lines, or a bad handshake); the
        child is gone by then.
        """
        begin = time.perf_counter()
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                cwd=str(self.env.path),
                env=_child_environment(self.host_lib),
                start_new_session=True,  # its own process group: killed as a whole
            )
        except OSError as exc:
            raise PluginLoadError(
                f"{self.env.key}: could not start {self.env.python}: {exc.strerror or exc}"
            ) from None
        _track(self)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin_fd = self._proc.stdin.fileno()
        self._reader = LineReader(self._proc.stdout.fileno())
        self._stderr_thread = threading.Thread(
            target=self._pump_stderr, name=f"arcade-stderr-{self.key}", daemon=True
        )
        self._stderr_thread.start()
        try:
            hello = self._handshake(timeout)
        except PluginLoadError:
            self.stop(grace=0.0)
            raise
        self.hooks = hello
        self.started_at = time.monotonic()
        self.start_seconds = time.perf_counter() - begin

    def _handshake(self, timeout: float) -> list[str]:
        what = f"{self.env.key} (as {self.key!r})"
        try:
            self._send({"type": "config", "data": to_wire(self.config)})
            reply = self._receive(timeout, expect_id=None)
        except TimeoutError:
            raise PluginLoadError(
                f"{what}: its process did not finish starting within {timeout:g}s"
                f"{self._tail_text()}"
            ) from None
        except ChildExited:
            code = self._wait_exit(2.0)
            raise PluginLoadError(
                f"{what}: its process exited with code {code} while starting"
                f"{self._tail_text()}"
            ) from None
        except TypeError as exc:
            raise PluginLoadError(f"{what}: config cannot be sent to the process: {exc}") \
                from None
        if reply["type"] == "error":
            raise PluginLoadError(f"{what}: {reply.get('error')}")
        hooks = reply.get("hooks")
        problems = []
        if reply["type"] != "hello":
            problems.append(f"expected 'hello', got {reply['type']!r}")
        if reply.get("protocol") != PROTOCOL_VERSION:
            problems.append(f"protocol {reply.get('protocol')!r}, expected {PROTOCOL_VERSION}")
        if reply.get("plugin") != self.env.name or reply.get("version") != self.env.version:
            problems.append(f"it says it is {reply.get('plugin')!r} {reply.get('version')!r}")
        if not isinstance(hooks, list) or not all(h in HOOK_NAMES for h in hooks):
            problems.append(f"unknown hooks {hooks!r}")
        if problems:
            raise PluginLoadError(f"{what}: bad handshake: {'; '.join(problems)}")
        assert isinstance(hooks, list)
        return [str(h) for h in hooks]

    def _tail_text(self) -> str:
        # Give the stderr pump a moment to catch the child's last words.
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=0.5)
        lines = [line for line in self.tail if line.strip()]
        return (": " + " | ".join(lines[-5:])) if lines else ""

    def _send(self, message: dict[str, Any]) -> None:
        try:
            _write_all(self._stdin_fd, encode_message(message))
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise ChildExited(str(exc)) from None

    def _receive(self, timeout: float, expect_id: int | None) -> dict[str, Any]:
        assert self._reader is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._reader.read_line(max(0.0, deadline - time.monotonic()))
            except ProtocolError as exc:
                self._malformed(str(exc))
                continue
            except TimeoutError:
                raise
            except OSError as exc:
                raise ChildExited(str(exc)) from None
            if line is None:
                raise ChildExited("end of output")
            try:
                message = decode_message(line)
            except ProtocolError as exc:
                self._malformed(str(exc))
                continue
            if expect_id is not None and message.get("id") != expect_id:
                self._malformed(f"answer for request {message.get('id')!r} while waiting "
                                f"for {expect_id}")
                continue
            return message

    def _malformed(self, reason: str) -> None:
        self.malformed += 1
        self._log.warning("plugin %s sent a malformed protocol line (%d so far): %s",
                          self.key, self.malformed, reason)

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and return the answer carrying its ``id``.

        Raises :class:`TimeoutError` (the caller kills the child) or :class:`ChildExited`.
        """
        self._send(message)
        return self._receive(timeout, expect_id=message.get("id"))

    def _pump_stderr(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        stream = proc.stderr
        try:
            for raw in iter(stream.readline, b""):
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.tail.append(text)
                self._log.info("%s", text)
        except (OSError, ValueError):  # pragma: no cover - closed under us
            pass
        finally:
            with contextlib.suppress(OSError):
                stream.close()
        code = proc.wait()
        if not self._stopping and self._on_exit is not None:
            try:
                self._on_exit(self, code)
            except Exception:  # pragma: no cover - supervisor bug; keep the thread quiet
                logger.exception("exit handler for %s failed", self.key)

    def _wait_exit(self, timeout: float) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Kill the child and its process group at once, and reap it. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        _live.discard(self)

    def mark_stopping(self) -> None:
        """From now on the child's exit is expected (no crash report)."""
        self._stopping = True

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop gracefully (``shutdown``, stdin closed), kill after ``grace`` seconds.

        The caller must not have a :meth:`request` in flight on another thread (the owner
        holds its call lock, or has killed the child first).
        """
        self._stopping = True
        proc = self._proc
        if proc is None or self._closed:
            return
        if proc.poll() is None and grace > 0:
            with contextlib.suppress(ChildExited):
                self._send({"type": "shutdown"})
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            if self._wait_exit(grace) is None:
                logger.info("plugin %s did not exit within %gs of shutdown; killing it",
                            self.key, grace)
        self.kill()
        self.close()

    def close(self) -> None:
        """Release the pipes of a child that has exited or was killed."""
        if self._closed or self._proc is None:
            return
        self._closed = True
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        pump = self._stderr_thread
        if pump is not None and pump is not threading.current_thread():
            pump.join(timeout=1.0)


# ---------------------------------------------------------------------------------------------
# supervisor


class ProcessPlugin:
    """One process-isolated plugin: its current child, its state and its restarts.

    ``state`` is ``running``, ``restarting`` (a background thread is waiting out the
    backoff or starting a new child), ``failed`` (restarts exhausted) or ``stopped``.
    ``on_event(kind, data)`` hears ``plugin.crashed``, ``plugin.restarted`` and
    ``plugin.failed`` with ``key``, ``name``, ``version``, ``error``, ``restarts``.
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
        self.state = "stopped"
        self.restarts = 0
        self.last_error = ""
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

    @property
    def start_seconds(self) -> float:
        """How long the current child took from spawn to handshake."""
        child = self._child
        return child.start_seconds if child is not None else 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def _spawn(self) -> ChildProcess:
        child = ChildProcess(self.env, self.key, self.config, self.host_lib,
                             on_exit=self._child_exited)
        with self._lock:
            if self.state == "stopped" and self._stop.is_set():
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
            self.state = "running"
        self._check_alive(child)

    def _check_alive(self, child: ChildProcess) -> None:
        code = child.returncode
        if code is not None:  # died before we installed it: its exit report was ignored
            self._crashed(child, f"the process exited with code {code} right after starting")

    def _child_exited(self, child: ChildProcess, code: int) -> None:
        self._crashed(child, f"the process exited with code {code}{_tail(child)}")

    def _crashed(self, child: ChildProcess, reason: str) -> None:
        """Handle the end of ``child`` once (whoever noticed first); schedule a restart."""
        with self._lock:
            if child is not self._child or self.state != "running":
                current = False
            else:
                current = True
                self._child = None
                self._malformed_before += child.malformed
                self.last_error = reason
                if time.monotonic() - child.started_at >= self.healthy_period:
                    self.restarts = 0
                self.state = "restarting"
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
                if self.state == "stopped":
                    return
                if self.restarts >= self.max_restarts:
                    self.state = "failed"
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
                if self.state == "stopped":
                    return
                self.restarts += 1
                attempt = self.restarts
            try:
                child = self._spawn()
            except PluginLoadError as exc:
                with self._lock:
                    if self.state == "stopped":
                        return
                    self.last_error = f"restart {attempt} failed: {exc}"
                logger.warning("plugin %s: %s", self.key, self.last_error)
                continue
            with self._lock:
                stopped = self.state == "stopped"
                if not stopped:
                    self._child = child
                    self.hooks = child.hooks
                    self.state = "running"
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
            self.state = "stopped"
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
        if self.state != "running":
            raise PluginCallError(self.key, hook, self._not_running())
        if not self._call_lock.acquire(timeout=limit):
            raise PluginCallError(self.key, hook,
                                  f"busy: another call did not finish within {limit:g}s")
        try:
            child = self._child
            if child is None or self.state != "running":
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
                reason = f"the process exited with code {code} during {hook}(){_tail(child)}"
                self._crashed(child, reason)
                raise PluginCallError(self.key, hook, reason) from None
        finally:
            self._call_lock.release()
        if reply["type"] == "result":
            return reply.get("data")
        if reply["type"] == "error":
            raise PluginCallError(self.key, hook, str(reply.get("error")))
        raise PluginCallError(self.key, hook, f"unexpected answer {reply['type']!r}")

    def ping(self, timeout: float | None = None) -> None:
        """One protocol round trip without plugin code (health check, benchmarks)."""
        limit = self.call_timeout if timeout is None else timeout
        with self._call_lock:
            child = self._child
            if child is None:
                raise PluginCallError(self.key, "ping", self._not_running())
            child.request({"type": "ping", "id": next(self._ids)}, limit)

    def _not_running(self) -> str:
        text = f"the plugin's process is {self.state}"
        return f"{text} (last error: {self.last_error})" if self.last_error else text


def _tail(child: ChildProcess) -> str:
    lines = [line for line in child.tail if line.strip()]
    return (": " + " | ".join(lines[-3:])) if lines else ""


# ---------------------------------------------------------------------------------------------
# proxy


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
    return list(value) if value is not None else []


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


if sys.platform == "win32":  # pragma: no cover
    raise ImportError("process isolation needs a POSIX system")
