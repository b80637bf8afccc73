"""What ``arcade quickstart`` shows: its step lines, a table redrawn in place, and the
"Arcade is up" block with the URLs and the commands to try next."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from .cli._output import styled

__all__ = ["Screen", "Steps", "say_up"]


def _command() -> str:
    """How to type ``arcade`` here: ``.venv/bin/arcade`` when it is not on PATH."""
    import shutil

    script = Path(sys.prefix) / "bin" / "arcade"
    on_path = shutil.which("arcade")
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        return "arcade"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def say_up(screen: Screen, agent_id: str, server: Any, token_file: Path) -> None:
    """Where everything is, and what to type next, once the agent runs the plugins."""
    bold, arcade = screen.bold, _command()
    screen.say(
        f"\n{bold('Arcade is up.')} REST API {bold(server.http_url + '/api/v1')}, "
        f"API docs {bold(server.http_url + '/docs')}, agents connect to "
        f"{bold(server.grpc_target)} (TLS).\nTry, in another terminal:\n"
        f"  {bold(f'export ARCADE_API={server.http_url} ARCADE_TOKEN=$(cat {token_file})')}")
    steps = [
        (f"status --agent {agent_id}", "desired and actual state of its plugins"),
        (f"metrics --agent {agent_id}", "the metrics the server stored"),
        (f"run --agent {agent_id} --plugin arcade-workspace@1.0.0:before -- echo hello",
         "a job with a plugin around it"),
        ("plugins", "the published plugins"),
    ]
    width = max(len(command) for command, _ in steps) + len(arcade) + 3
    for command, what in steps:
        screen.say(f"  {bold(f'{arcade} {command}'.ljust(width))} {what}")


class Screen:
    """Where the quick start writes: lines, and a table redrawn in place on a terminal
    (printed anew per refresh otherwise, so a log keeps every one)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.terminal = out.isatty()
        self._drawn = 0  # lines of the last table drawn in place

    def bold(self, text: str) -> str:
        return styled(text, "bold", self.out)

    def say(self, text: str) -> None:
        self._drawn = 0
        self.out.write(text + "\n")
        self.out.flush()

    def redraw(self, text: str) -> None:
        if self.terminal and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")  # back to the table's first line
        self.out.write(text)
        self.out.flush()
        self._drawn = text.count("\n")


class Steps:
    """Prints one line per step, and how long it took or why it failed."""

    def __init__(self, screen: Screen) -> None:
        self.screen = screen
        self.n = 0

    @contextlib.contextmanager
    def __call__(self, text: str) -> Iterator[None]:
        self.n += 1
        started = time.perf_counter()
        out = self.screen.out
        self.screen.say(f"{styled(f'{self.n}.', 'bold cyan', out)} {text} ...")
        try:
            yield
        except Exception as exc:
            self.screen.say(f"   {styled('failed:', 'red', out)} {exc}")
            raise
        self.screen.say(f"   {styled('done', 'green', out)} in "
                        f"{time.perf_counter() - started:.2f}s")
