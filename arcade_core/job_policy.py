"""The job policy of an agent: whether it runs job commands at all, and which ones.

An agent runs job commands only when its own config says so (``[jobs] enabled = true``; off
by default), optionally limited to shell-style patterns (``[jobs] allow = ["make *", …]``).
The agent tells the server its policy when it registers; the server refuses a job the agent
would refuse (409) and the agent checks again when a job arrives. Both use this module, so
the two checks cannot disagree.

A pattern matches a whole command (leading and trailing blanks ignored). ``*`` matches any
run of characters and ``?`` one character, **except** the shell's control and substitution
characters ``; & | ` $ ( ) < >``, backslash and newline: ``make *`` allows ``make test`` but
not ``make test; rm -rf ~`` or ``make $(id)``. Every other character of a pattern matches
itself (there are no ``[...]`` classes). A pattern may contain those characters literally,
so an operator who writes ``make test && make lint`` allows exactly that command.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ENABLE_HINT", "JobPolicy", "command_allowed"]

#: What to tell an operator whose agent does not run jobs.
ENABLE_HINT = ("set `[jobs] enabled = true` in the agent's config file (or "
               "ARCADE_AGENT_JOBS_ENABLED=true) and restart the agent")

_UNSAFE = ";&|`$()<>\\\n"
_FREE = "[^" + re.escape(_UNSAFE) + "]"


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts = []
    for char in pattern.strip():
        if char == "*":
            parts.append(_FREE + "*")
        elif char == "?":
            parts.append(_FREE)
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def command_allowed(command: str, patterns: Sequence[str]) -> bool:
    """True when ``command`` matches one of ``patterns`` (no patterns: every command)."""
    if not patterns:
        return True
    text = command.strip()
    return any(_compiled(p).fullmatch(text) is not None for p in patterns)


@dataclass(frozen=True)
class JobPolicy:
    """An agent's ``[jobs]`` settings: ``enabled``, and ``allow`` (empty: any command)."""

    enabled: bool = False
    allow: tuple[str, ...] = ()

    def refusal(self, commands: Sequence[str], agent: str = "this agent") -> str | None:
        """Why ``commands`` may not run under this policy, or ``None`` when they may."""
        if not self.enabled:
            return f"{agent} does not run jobs: {ENABLE_HINT}"
        for i, command in enumerate(commands):
            if not command_allowed(command, self.allow):
                shown = command if len(command) <= 200 else command[:199] + "…"
                return (f"commands[{i}] {shown!r} is not allowed on {agent}: it matches "
                        f"none of its [jobs] allow patterns {list(self.allow)!r}")
        return None
