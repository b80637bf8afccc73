"""Drive an exec plugin's executable over the line protocol, as a test (docs/protocol.md).

:class:`ExecProcess` starts the program with pipes for stdin/stdout/stderr in its own process
group, writes messages to it and reads its lines, checking every line in both directions
against the protocol's JSON Schemas (:mod:`arcade_core.protocol`), so a test that talks to a
plugin through it also proves the plugin keeps to the protocol::

    with ExecProcess([str(program)]) as plugin:
        plugin.send({"type": "config", "data": {"interval": 0.2}})
        assert plugin.receive()["type"] == "hello"
        batch = plugin.receive_until("metric")
        assert plugin.shutdown() == 0

It is the agent's side in miniature, with none of its supervision: no restarts, no hang
timer. ``PluginProject.exec_process`` runs a project's built and installed program in it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._exceptions import ProtocolError
from .._protocol import LineReader, decode_message, encode_message, write_all
from ..protocol import check_message

__all__ = ["ExecProcess"]

#: How long :meth:`ExecProcess.receive` waits for a line by default, in seconds.
DEFAULT_TIMEOUT = 10.0


class ExecProcess:
    """One run of an exec plugin's program, spoken to over its stdin/stdout.

    Every line read must be a valid plugin → agent message (else :class:`ProtocolError`
    with the line and the reason); every message sent must be a valid agent → plugin one.
    ``stderr`` collects what the program wrote to its standard error. Closing (or leaving the
    ``with`` block) kills the program's whole process group if it is still running.
    """

    def __init__(self, argv: Sequence[str | os.PathLike[str]], *,
                 cwd: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.argv = [os.fspath(a) for a in argv]
        self._proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=cwd, env=None if env is None else dict(env), start_new_session=True)
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._reader = LineReader(self._proc.stdout.fileno())
        self._stderr: list[bytes] = []
        self._stderr_thread = threading.Thread(target=self._drain, daemon=True,
                                               name=f"stderr of {Path(self.argv[0]).name}")
        self._stderr_thread.start()
        #: Every message read so far, in order.
        self.received: list[dict[str, Any]] = []

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def stderr(self) -> str:
        """What the program wrote to stderr so far."""
        return b"".join(self._stderr).decode("utf-8", "replace")

    def _drain(self) -> None:
        stream = self._proc.stderr
        assert stream is not None
        while chunk := os.read(stream.fileno(), 65536):
            self._stderr.append(chunk)

    def send(self, message: Mapping[str, Any]) -> None:
        """Write one agent → plugin message (checked against its schema) as a line."""
        check_message(message, direction="to_plugin")
        self.send_line(encode_message(dict(message)))

    def send_line(self, line: bytes) -> None:
        """Write raw bytes to the program's stdin, unchecked (for malformed input tests)."""
        assert self._proc.stdin is not None
        write_all(self._proc.stdin.fileno(), line)

    def receive(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """The next message from the program, checked against its schema.

        :class:`TimeoutError` when no line comes within ``timeout`` seconds,
        :class:`EOFError` when the program closed its stdout, :class:`ProtocolError` for a
        line that is not a valid plugin → agent message."""
        line = self._reader.read_line(timeout)
        if line is None:
            raise EOFError(f"{self.argv[0]} closed its stdout (exit status "
                           f"{self._proc.poll()}); stderr: {self.stderr[-2000:]!r}")
        try:
            message = decode_message(line)
            check_message(message, direction="from_plugin")
        except ProtocolError as exc:
            raise ProtocolError(f"{self.argv[0]} wrote {line[:200]!r}: {exc}") from None
        self.received.append(message)
        return message

    def receive_until(self, kind: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Read messages until one of type ``kind`` arrives (within ``timeout`` seconds in
        all); the ones before it stay in :attr:`received`."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(max(deadline - time.monotonic(), 0.001))
            if message["type"] == kind:
                return message

    def shutdown(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Send ``shutdown``, close stdin, read the remaining lines (each still checked) and
        return the exit status once the program exited; :class:`TimeoutError` if it does
        not exit within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self.send({"type": "shutdown"})
        assert self._proc.stdin is not None
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        with contextlib.suppress(EOFError):
            while True:
                self.receive(max(deadline - time.monotonic(), 0.001))
        return self._proc.wait(max(deadline - time.monotonic(), 0.001))

    def close(self) -> None:
        """Kill the program's process group if anything of it still runs; release the pipes."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self._stderr_thread.join(timeout=5)
        if self._proc.stderr is not None:
            self._proc.stderr.close()

    def __enter__(self) -> ExecProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
