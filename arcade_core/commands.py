"""The ``arcade`` command: a small dispatcher over the entry-point group ``arcade.commands``.

Each subcommand is an entry point ``NAME = module:callable [extra,...]`` in the group
``arcade.commands``; the callable is ``main(argv: list[str], *, prog: str) -> int``. The
dispatcher reads the entry points without importing their targets, then imports only the
module of the command that runs, so ``arcade agent`` never loads the operator CLI and
``arcade status`` never loads the server. The ``[extra]`` part of an entry point names the
extra(s) of the distribution the command needs: when importing the command's module fails
with :class:`ModuleNotFoundError` for a dependency, ``arcade`` prints one line naming the extra
to install and exits with 2, no traceback.

Entry points are read straight from the ``*.dist-info/entry_points.txt`` files on
``sys.path`` (the first distribution of a name wins, as with :mod:`importlib.metadata`):
importing :mod:`importlib.metadata` costs more than the rest of ``arcade status --help``
together (email, zipfile, csv). Help lines of the built-in commands come from the static
table :data:`SUMMARIES`; a command another distribution adds is listed with its target.

:func:`parser` is the one argparse factory of every ``arcade`` command (the operator CLI,
``arcade agent``, ``arcade server``), so their help looks alike.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from typing import Any

__all__ = [
    "EXIT_USAGE",
    "GROUP",
    "SUMMARIES",
    "Command",
    "HelpFormatter",
    "find_commands",
    "main",
    "parser",
    "require",
]

GROUP = "arcade.commands"
#: Exit status for bad usage and for a command whose extra is not installed.
EXIT_USAGE = 2

DESCRIPTION = "Arcade: plugins for agent fleets. Run the server, publish plugins, install them."

#: One-line help of the built-in commands, in the order ``arcade --help`` lists them.
SUMMARIES: dict[str, str] = {
    "server": "Run the Arcade server: REST API and gRPC for agents.",
    "publish": "Publish a plugin wheel (and the wheels of its dependencies), or the built-ins.",
    "plugins": "List published plugins, or show one with its versions.",
    "sign": "Add your signature to a published plugin version.",
    "keys": "Make signing keys; see or change the keys a plugin name accepts.",
    "enable": "Allow new assignments of a plugin.",
    "disable": "Refuse new assignments of a plugin (agents already running it keep it).",
    "agents": "List agents with their status (online/offline) and revisions.",
    "status": "Show what runs where: the fleet, or one agent's plugins with their errors.",
    "install": "Install a plugin version on one agent or on every agent matching a selector.",
    "uninstall": "Remove a plugin from an agent's desired state (or from every matching "
                 "agent).",
    "config": "Change a plugin assigned to an agent in place: its config, interval or "
              "resource limits.",
    "metrics": "Show an agent's stored metrics in their units (--latest: current values).",
    "logs": "Show the last lines a plugin logged on an agent; --follow for new ones.",
    "versions": "List a plugin's published versions, or delete one.",
    "updates": "Show the newer versions of a plugin on its package index.",
    "run": "Run commands on an agent as a job, with plugins around them; follow it live.",
    "jobs": "List jobs, newest first.",
    "job": "Show one job: status, timing, plugin records and the end of its output.",
    "agent": "Run an Arcade agent: connect to the server, apply its desired state.",
    "quickstart": "Run everything locally: server, built-in plugins, an agent, live metrics.",
    "plugin": "Start a new plugin project: arcade plugin new NAME.",
    "login": "Check an API token against the server and save it for the other commands.",
    "tokens": "Create, list and revoke API tokens (admin).",
    "enroll": "Create, list and delete agent enrollment tokens (admin).",
    "audit": "Show the audit log, newest first (admin).",
}


@dataclass(frozen=True)
class Command:
    """One ``arcade.commands`` entry point, read but not imported."""

    name: str
    module: str
    attr: str
    extras: tuple[str, ...]
    dist: str  # the distribution that declares it, e.g. "arcade-fleet"

    @property
    def summary(self) -> str:
        return SUMMARIES.get(self.name) or f"(from {self.dist}: {self.module})"

    def load(self) -> Callable[..., int]:
        """Import the command's module (only this one) and return its callable."""
        target: Any = import_module(self.module)
        for part in self.attr.split("."):
            target = getattr(target, part)
        return target  # type: ignore[no-any-return]


# ---------------------------------------------------------------- entry points


def _parse_value(value: str) -> tuple[str, str, tuple[str, ...]]:
    """``module:attr [extra1, extra2]`` → (module, attr, extras)."""
    extras: tuple[str, ...] = ()
    value = value.strip()
    if value.endswith("]") and "[" in value:
        value, _, rest = value.partition("[")
        extras = tuple(e.strip() for e in rest[:-1].split(",") if e.strip())
    module, _, attr = value.strip().partition(":")
    return module.strip(), attr.strip(), extras


def _read_group(text: str, group: str) -> Iterator[tuple[str, str]]:
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            name, _, value = line.partition("=")
            yield name.strip(), value.strip()


def _dist_name(dirname: str) -> str:
    """``arcade_fleet-0.1.0.dist-info`` → ``arcade-fleet``."""
    return dirname[: -len(".dist-info")].partition("-")[0].replace("_", "-").lower()


def find_commands(paths: Sequence[str] | None = None) -> dict[str, Command]:
    """The ``arcade.commands`` entry points of the distributions on ``paths`` (``sys.path``);
    the first distribution of a name wins, and the first command of a name."""
    commands: dict[str, Command] = {}
    seen: set[str] = set()
    for entry in sys.path if paths is None else paths:
        try:
            names = sorted(n for n in os.listdir(entry or ".") if n.endswith(".dist-info"))
        except OSError:
            continue
        for dirname in names:
            dist = _dist_name(dirname)
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(os.path.join(entry or ".", dirname, "entry_points.txt"),
                          encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            for name, value in _read_group(text, GROUP):
                module, attr, extras = _parse_value(value)
                if name not in commands and module and attr:
                    commands[name] = Command(name, module, attr, extras, dist)
    return commands


def require(*modules: str) -> None:
    """Raise :class:`ModuleNotFoundError` unless every top-level module is installed.

    A command module whose dependencies are imported lazily (so ``--help`` stays fast) calls
    this at import time, so a missing extra is reported before the command starts.
    Finding a module does not import it.
    """
    for name in modules:
        if find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


# ---------------------------------------------------------------- help


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, with ``[default: X]`` after options whose default says something."""

    def __init__(self, prog: str) -> None:
        import shutil

        width = min(shutil.get_terminal_size().columns, 100) - 2
        super().__init__(prog, max_help_position=30, width=width)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (default not in (None, False, True, argparse.SUPPRESS, [], "")
                and "default" not in text and action.option_strings):
            text += f" [default: {default}]"
        return text


def parser(prog: str, description: str, *, epilog: str | None = None,
           **kwargs: Any) -> argparse.ArgumentParser:
    """The argument parser of an ``arcade`` command, formatted like every other one."""
    return argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                   formatter_class=HelpFormatter, **kwargs)


def _help(commands: dict[str, Command]) -> str:
    order = {name: i for i, name in enumerate(SUMMARIES)}
    names = sorted(commands, key=lambda n: (order.get(n, len(order)), n))
    width = max((len(n) for n in names), default=0) + 2
    lines = ["usage: arcade COMMAND [ARGS]...", "", DESCRIPTION, "", "commands:"]
    lines += [f"  {name.ljust(width)}{commands[name].summary}" for name in names]
    if not names:
        lines.append("  (none installed)")
    lines += ["", "Run 'arcade COMMAND --help' for a command's options."]
    return "\n".join(lines) + "\n"


def _missing_extra(command: Command, exc: ModuleNotFoundError) -> str:
    missing = (exc.name or "?").partition(".")[0]
    if not command.extras:
        return f"arcade {command.name} cannot run: {missing} is not installed"
    extras = ",".join(command.extras)
    word = "extra" if len(command.extras) == 1 else "extras"
    quoted = ", ".join(f"'{e}'" for e in command.extras)
    return (f"arcade {command.name} needs the {quoted} {word}: "
            f"pip install '{command.dist}[{extras}]' ({missing} is not installed)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``arcade COMMAND ARGS...``; return the exit status (console-script entry point)."""
    args = list(sys.argv[1:] if argv is None else argv)
    commands = find_commands()
    if not args or args[0] in ("-h", "--help"):
        (sys.stdout if args else sys.stderr).write(_help(commands))
        return 0 if args else EXIT_USAGE
    name, rest = args[0], args[1:]
    command = commands.get(name)
    if command is None:
        sys.stderr.write(f"usage: arcade COMMAND [ARGS]...\nerror: no such command {name!r}; "
                         "'arcade --help' lists them\n")
        return EXIT_USAGE
    try:
        run = command.load()
    except ModuleNotFoundError as exc:
        own = exc.name is not None and (command.module == exc.name
                                        or command.module.startswith(exc.name + "."))
        if own:
            raise
        sys.stderr.write(f"error: {_missing_extra(command, exc)}\n")
        return EXIT_USAGE
    return int(run(rest, prog=f"arcade {name}") or 0)


if __name__ == "__main__":
    sys.exit(main())
