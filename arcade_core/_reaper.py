"""The per-plugin reaper: a tiny supervisor process between the host and a plugin's command.

The host runs ``python -I -S .../_reaper.py [--as BYTES] -- argv...`` (standard library only,
no ``site``: it starts in a few milliseconds) instead of the plugin's command. The reaper

* makes itself the *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``), so every process
  the plugin starts — even one that called ``setsid()`` or double-forked — is re-parented to
  it, never to PID 1, when its own parent dies;
* starts the command with the reaper's stdin, stdout and stderr (the protocol pipes pass
  straight through: no copying), then points its own stdin/stdout at ``/dev/null`` so the
  host sees end-of-file exactly when the plugin's processes close them;
* forwards ``SIGTERM``, ``SIGINT``, ``SIGHUP`` and ``SIGQUIT`` to the plugin;
* when the plugin exits, kills every process still left under it (``SIGKILL``, repeated
  until none is left, zombies reaped) and exits the way the plugin did: with its exit code,
  or killed by the same signal;
* ``--as BYTES``: sets ``RLIMIT_AS`` on the command, a backstop under the host's memory
  watchdog (never for Python plugins: Python's allocator misfires under it).

The plugin is started with ``PR_SET_PDEATHSIG`` = ``SIGKILL``: should the reaper itself be
killed, the plugin goes with it (its pipes close, the host sees a crash).

The host side is :mod:`arcade_core._limits`, which also reuses :func:`descendants` to kill a
whole tree at once (``ChildProcess.kill``).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing would cost the reaper 16 ms
if TYPE_CHECKING:
    import signal
else:
    # The C module under `signal`: the same functions and numbers without `signal`'s IntEnum
    # wrapping, whose import (enum, functools, collections) was two thirds of the reaper's
    # start (8.6 of 13 ms), paid on every plugin start.
    import _signal as signal

__all__ = ["EXEC_FAILED", "descendants", "kill_rest", "main", "parent_map", "stat_fields"]

#: The exit code when the command cannot be started (as a shell says "command not found").
EXEC_FAILED = 127
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
_WATCHED = (*_FORWARDED, signal.SIGCHLD)
_RESET = (*_FORWARDED, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD)
_HAS_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` from the state on (``[0]`` is field 3, the state;
    ``[1]`` the parent pid; the command name, which may hold spaces, is skipped), or None
    when the process is gone. Shared with :mod:`arcade_core._watchdog`."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:].split()


def parent_map() -> dict[int, int]:
    """``pid → parent pid`` of every process in ``/proc`` (zombies included)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        fields = stat_fields(name) if name.isdigit() else None
        if fields is not None and len(fields) > 1:
            parents[int(name)] = int(fields[1])
    return parents


def _children(pid: int) -> list[int]:
    """``pid``'s children from ``/proc/<pid>/task/*/children`` (every thread's)."""
    found: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
            found.extend(int(word) for word in f.read().split())
    return found


def descendants(root: int, parents: dict[int, int] | None = None) -> list[int]:
    """Every process below ``root`` (children first, then theirs), from ``/proc``: walking
    the ``children`` files of the tree only (cheap), else — without them, or given
    ``parents`` — from a map of every process."""
    if parents is None and _HAS_CHILDREN:
        found: list[int] = []
        queue = [root]
        while queue:
            try:
                kids = _children(queue.pop())
            except FileNotFoundError:  # it exited meanwhile
                continue
            found.extend(kids)
            queue.extend(kids)
        return found
    if parents is None:
        parents = parent_map()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    below: list[int] = []
    queue = [root]
    while queue:
        for pid in children.get(queue.pop(), ()):
            below.append(pid)
            queue.append(pid)
    return below


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):  # not Linux: no subreaper
        return False


def _spawn(argv: list[str], address_space: int | None) -> int:
    pid = os.fork()
    if pid:
        return pid
    try:  # the plugin's process: default signals, dies with the reaper, then exec
        parent = os.getppid()
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(EXEC_FAILED)
        for signum in _RESET:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        if address_space is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        os.execvp(argv[0], argv)
    except BaseException as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        os.write(2, f"arcade reaper: cannot run {argv[0]}: {message}\n".encode())
    os._exit(EXEC_FAILED)


def _reap(plugin: int) -> int | None:
    """Collect every exited child; the plugin's wait status if it was among them."""
    status = None
    while True:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == plugin:
            status = code


def kill_rest() -> None:
    """``SIGKILL`` every process below this one until none is left, reaping them.

    With no child left there is no descendant either (a subreaper inherits every orphan), so
    a plugin that leaves nothing behind costs no ``/proc`` scan."""
    me = os.getpid()
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            continue
        for pid in descendants(me):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
        signal.sigtimedwait([signal.SIGCHLD], 0.02)


def _exit_like(status: int) -> None:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        if signum not in (signal.SIGSTOP, signal.SIGTSTP):
            if signum != signal.SIGKILL:
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
            os.kill(os.getpid(), signum)
        os._exit(128 + signum)
    os._exit(os.waitstatus_to_exitcode(status))


def main(args: list[str]) -> None:
    """Run ``args`` (``[--as BYTES] -- argv...``) as described above; never returns."""
    address_space = None
    if args[:1] == ["--as"] and len(args) > 2:
        address_space = int(args[1])
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        os.write(2, b"usage: _reaper.py [--as BYTES] -- command [args...]\n")
        os._exit(2)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
    plugin = _spawn(args, address_space)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    status = None
    while status is None:
        status = _reap(plugin)
        if status is not None:
            break
        info = signal.sigwaitinfo(_WATCHED)
        if info.si_signo != signal.SIGCHLD:
            try:  # noqa: SIM105 - contextlib would cost milliseconds at every start
                os.kill(plugin, info.si_signo)
            except ProcessLookupError:
                pass
    kill_rest()
    _exit_like(status)


if __name__ == "__main__":
    main(sys.argv[1:])
