"""One plugin child process, seen from the host (its other side is :mod:`arcade_core._child`).

:class:`ChildProcess` spawns ``env.python -m arcade_core._child``, performs the handshake,
sends one request at a time over plain blocking pipes with ``poll`` for the timeout, pumps
its stderr into the host's log, and stops it (a ``shutdown`` message and closed stdin
first, then a kill of its whole process tree). The command runs under the plugin's reaper
with its limits watched (:mod:`arcade_core._limits`). Every child is also tracked for
``atexit``: no child outlives the host process.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._exceptions import ArcadeError, PluginLoadError, ProtocolError
from ._hostlib import child_environment
from ._limits import Limits
from ._protocol import PROTOCOL_VERSION, LineReader, decode_message, encode_message, to_wire
from ._protocol import write_all as _write_all
from .hookspecs import HOOK_NAMES

if TYPE_CHECKING:
    from ._environment import Environment

__all__ = ["STOP_GRACE", "ChildExited", "ChildProcess", "tail"]

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


class ChildExited(ArcadeError):
    """The child's protocol channel ended: it exited or closed the pipe (never leaves
    ``arcade_core``: the supervisor turns it into a restart and a :class:`PluginCallError`)."""


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
        on_stderr: Callable[[str], None] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.env = env
        self.key = key
        self.config = dict(config)
        self.host_lib = host_lib
        self.hooks: list[str] = []
        self.malformed = 0
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self.started_at = 0.0
        self._on_exit = on_exit
        self._on_stderr = on_stderr
        self.limits = limits or Limits(key)  # part "limits": reaper, watchdog, tree kill
        self._stopping = False
        self._closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: LineReader | None = None
        self._stdin_fd = -1
        self._stderr_thread: threading.Thread | None = None
        self._log = logging.getLogger(f"arcade.plugin.{key}")

    @property
    def pid(self) -> int | None:
        return self.limits.plugin_pid(self._proc) if self._proc is not None else None

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
        try:
            self._proc = subprocess.Popen(
                self.limits.command(self.command(), self.env.python),  # part "limits": reaper
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                cwd=str(self.env.path),
                env=child_environment(self.host_lib),
                start_new_session=True,  # its own process group: killed as a whole
            )
        except OSError as exc:
            raise PluginLoadError(
                f"{self.env.key}: could not start {self.env.python}: {exc.strerror or exc}"
            ) from None
        _track(self)
        self.limits.watch(self._proc)  # part "limits": memory/cpu watchdog
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
        """Kill the child and every process under it at once, and reap it. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        self.limits.kill(proc)  # part "limits": the whole tree, setsid() children included
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


def tail(child: ChildProcess) -> str:
    """The child's last few stderr lines, for an error message (``""`` when none)."""
    lines = [line for line in child.tail if line.strip()]
    return (": " + " | ".join(lines[-3:])) if lines else ""
