"""One plugin child process, seen from the host.

Two kinds of child speak the same JSON-lines protocol (:mod:`arcade_core._protocol`):

* a Python plugin's: ``env.python -m arcade_core._child`` (its other side is
  :mod:`arcade_core._child`), which must say ``hello`` with the installed name and version;
* an exec plugin's: the executable its manifest names, ``<env>/bin/<exec>`` (any language),
  whose ``hello`` may leave the name and version out (if given they must match).

:class:`ChildProcess` spawns one, sends its first ``config`` and waits for its ``hello``;
from then on a reader thread (:class:`~arcade_core._channel.Channel`) dispatches every line
the child writes: answers to :meth:`ChildProcess.request`, pushed metrics, log lines,
heartbeats; ``hang_timeout`` seconds without a valid line calls ``on_hang``. Its stderr is
pumped into the host's log. It stops gracefully (``shutdown``, closed stdin, then SIGTERM
after ``STOP_GRACE`` and SIGKILL of its whole process group after ``TERM_GRACE``). Every
child is also tracked for ``atexit``: no child outlives the host process.

An exec child's environment is minimal, not the host's (whose variables may hold an agent's
secrets): ``PATH`` (the environment's ``bin/`` first, then ``/usr/local/bin:/usr/bin:/bin``),
``LANG=C.UTF-8``, ``TZ`` and ``TMPDIR`` when the host has them, and ``ARCADE_PLUGIN``,
``ARCADE_PLUGIN_VERSION``, ``ARCADE_PROTOCOL``; no ``HOME``: the environment is immutable
(a file written there is drift), so a plugin keeps no state on disk unless its config names
a place. Its working directory is the environment.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._channel import Channel, ChildExited
from ._exceptions import PluginLoadError
from ._hostlib import child_environment
from ._protocol import PROTOCOL_VERSION, to_wire
from ._types import Metric
from .hookspecs import HOOK_NAMES

if TYPE_CHECKING:
    from ._environment import Environment

__all__ = ["STOP_GRACE", "TERM_GRACE", "ChildExited", "ChildProcess", "tail"]

logger = logging.getLogger("arcade.process")

#: Seconds a child gets to exit after ``shutdown`` (and closed stdin) before SIGTERM.
STOP_GRACE = 1.0
#: Seconds a child gets to exit after SIGTERM before SIGKILL.
TERM_GRACE = 1.0
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


class ChildProcess:
    """One running child for one plugin version and config (see the module docstring).

    ``executable`` set: an exec plugin's child; else the Python host child. ``interval``
    travels in the ``config`` message (inside ``data`` for an exec child, beside it for the
    Python one, which also hears how often to send heartbeats). :meth:`request` may be
    called from several threads (answers are matched by id); :meth:`kill` from any thread.
    """

    def __init__(
        self,
        env: Environment,
        key: str,
        config: Mapping[str, Any],
        host_lib: Path,
        *,
        executable: Path | None = None,
        interval: float = 0.0,
        hang_timeout: float | None = None,
        on_exit: Callable[[ChildProcess, int], None] | None = None,
        on_stderr: Callable[[str], None] | None = None,
        on_metrics: Callable[[list[Metric]], None] | None = None,
        on_log: Callable[[str, str], None] | None = None,
        on_hang: Callable[[ChildProcess, float], None] | None = None,
    ) -> None:
        self.env = env
        self.key = key
        self.config = dict(config)
        self.host_lib = host_lib
        self.executable = executable
        self.interval = interval
        self.hang_timeout = hang_timeout
        self.hooks: list[str] = []
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self.started_at = 0.0
        self._on_exit = on_exit
        self._on_stderr = on_stderr
        self._on_metrics = on_metrics
        self._on_log = on_log
        self._on_hang = on_hang
        self._stopping = False
        self._closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: Channel | None = None
        self._stderr_thread: threading.Thread | None = None
        self._log = logging.getLogger(f"arcade.plugin.{key}")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def malformed(self) -> int:
        """Protocol lines this child got wrong."""
        return self._channel.malformed if self._channel is not None else 0

    def command(self) -> list[str]:
        if self.executable is not None:
            return [str(self.executable)]
        ep = self.env.entry_point
        value = f"{ep.module}:{ep.attr}" if ep.attr else ep.module
        return [str(self.env.python), "-P", "-m", "arcade_core._child", value,
                self.env.name, self.env.version]

    def environment(self) -> dict[str, str]:
        """The child's environment variables (see the module docstring)."""
        if self.executable is None:
            return child_environment(self.host_lib)
        env = {"PATH": f"{self.env.path / 'bin'}:/usr/local/bin:/usr/bin:/bin",
               "LANG": "C.UTF-8", "ARCADE_PLUGIN": self.env.name,
               "ARCADE_PLUGIN_VERSION": self.env.version,
               "ARCADE_PROTOCOL": str(PROTOCOL_VERSION)}
        env.update({k: os.environ[k] for k in ("TZ", "TMPDIR") if k in os.environ})
        return env

    def config_message(self, config: Mapping[str, Any], interval: float,
                       call_id: int | None = None) -> dict[str, Any]:
        """The ``config`` message for ``config`` and ``interval`` (``call_id``: the Python
        child answers a config change with ``result``/``error`` for that id)."""
        data = to_wire(dict(config))
        if self.executable is not None:
            # 60 rather than 60.0: the simplest parsers in other languages read integers.
            every: float = int(interval) if float(interval).is_integer() else interval
            return {"type": "config", "data": {**data, "interval": every}}
        message: dict[str, Any] = {"type": "config", "data": data, "interval": interval,
                                   "heartbeat": self._heartbeat_period()}
        if call_id is not None:
            message["id"] = call_id
        return message

    def _heartbeat_period(self) -> float:
        """How often the Python child says ``heartbeat`` when it has nothing else to say:
        a third of the hang timeout, at most 5 s (the protocol asks for one every 10 s)."""
        if self.hang_timeout is None:
            return 5.0
        return min(5.0, self.hang_timeout / 3)

    def start(self, timeout: float) -> None:
        """Spawn the child, send its config and wait for its ``hello``.

        Raises :class:`~arcade_core.PluginLoadError` saying why the plugin did not come up
        (its import error, its exit code and last stderr lines, no hello in time, or a bad
        handshake); the child is gone by then.
        """
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                cwd=str(self.env.path),
                env=self.environment(),
                start_new_session=True,  # its own process group: killed as a whole
            )
        except OSError as exc:
            raise PluginLoadError(
                f"{self.env.key}: could not start {self.command()[0]}: {exc.strerror or exc}"
            ) from None
        _track(self)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        child = self

        def on_hang(seconds: float) -> None:
            if child._on_hang is not None:
                child._on_hang(child, seconds)

        self._channel = Channel(self.key, self._proc.stdin.fileno(),
                                self._proc.stdout.fileno(), hang_timeout=self.hang_timeout,
                                on_metrics=self._on_metrics, on_log=self._on_log,
                                on_hang=on_hang)
        self._stderr_thread = threading.Thread(
            target=self._pump_stderr, name=f"arcade-stderr-{self.key}", daemon=True
        )
        self._stderr_thread.start()
        self._channel.start()
        try:
            hello = self._handshake(timeout)
        except PluginLoadError:
            self.stop(grace=0.0)
            raise
        self.hooks = hello
        self.started_at = time.monotonic()

    def _handshake(self, timeout: float) -> list[str]:
        what = f"{self.env.key} (as {self.key!r})"
        assert self._channel is not None
        try:
            self._channel.send(self.config_message(self.config, self.interval))
            reply = self._channel.hello(timeout)
        except TimeoutError:
            said = "said no 'hello'" if self.executable is not None else \
                "did not finish starting"
            raise PluginLoadError(
                f"{what}: its process {said} within {timeout:g}s{self._tail_text()}"
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
        problems = _hello_problems(reply, self.env.name, self.env.version,
                                   strict=self.executable is None)
        if problems:
            raise PluginLoadError(f"{what}: bad handshake: {'; '.join(problems)}")
        return [str(h) for h in reply["hooks"]]

    def _tail_text(self) -> str:
        # Give the stderr pump a moment to catch the child's last words.
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=0.5)
        lines = [line for line in self.tail if line.strip()]
        return (": " + " | ".join(lines[-5:])) if lines else ""

    def send(self, message: dict[str, Any]) -> None:
        """Write one message that needs no answer (:class:`ChildExited` if it is gone)."""
        if self._channel is None:
            raise ChildExited("not started")
        self._channel.send(message)

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and return the answer carrying its ``id``.

        Raises :class:`TimeoutError` (the caller kills the child) or :class:`ChildExited`.
        """
        if self._channel is None:
            raise ChildExited("not started")
        return self._channel.request(message, timeout)

    def _pump_stderr(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        stream = proc.stderr
        try:
            for raw in iter(stream.readline, b""):
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.tail.append(text)
                self._log.info("%s", text)
                if self._on_stderr is not None:
                    self._on_stderr(text)
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
                self.send({"type": "shutdown"})
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            if self._wait_exit(grace) is None:
                logger.info("plugin %s did not exit within %gs of shutdown; terminating it",
                            self.key, grace)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
                if self._wait_exit(TERM_GRACE) is None:
                    logger.info("plugin %s did not exit within %gs of SIGTERM; killing it",
                                self.key, TERM_GRACE)
        self.kill()
        self.close()

    def close(self) -> None:
        """Release the pipes of a child that has exited or was killed."""
        if self._closed or self._proc is None:
            return
        self._closed = True
        channel = self._channel
        if channel is not None and self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            # The reader ends at the child's end of output: let it, before its fd goes.
            channel.join(timeout=1.0)
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        pump = self._stderr_thread
        if pump is not None and pump is not threading.current_thread():
            pump.join(timeout=1.0)


def _hello_problems(reply: dict[str, Any], name: str, version: str, *, strict: bool
                    ) -> list[str]:
    """What is wrong with a ``hello`` (``strict``: it must name ``name`` and ``version``;
    otherwise they may be left out, but must match when given)."""
    hooks = reply.get("hooks")
    problems = []
    if reply["type"] != "hello":
        problems.append(f"expected 'hello', got {reply['type']!r}")
    if reply.get("protocol") != PROTOCOL_VERSION:
        problems.append(f"protocol {reply.get('protocol')!r}, expected {PROTOCOL_VERSION}")
    for field, expected in (("plugin", name), ("version", version)):
        said = reply.get(field)
        if (strict or said is not None) and said != expected:
            problems.append(f"its {field} is {said!r}, not {expected!r}")
    if not isinstance(hooks, list) or not all(h in HOOK_NAMES for h in hooks):
        problems.append(f"hooks must be a list of {', '.join(HOOK_NAMES)}; got {hooks!r}")
    return problems


def tail(child: ChildProcess) -> str:
    """The child's last few stderr lines, for an error message (``""`` when none)."""
    lines = [line for line in child.tail if line.strip()]
    return (": " + " | ".join(lines[-3:])) if lines else ""
