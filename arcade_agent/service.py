"""Running an agent as a service: settings from flags, logging, signals, the event loop.

Used by the agent's one front end, :mod:`arcade_agent.__main__` (argparse, so a long-running
agent process does not carry the operator CLI's libraries), which serves ``arcade agent`` and
``python -m arcade_agent``. SIGTERM and SIGINT stop the agent cleanly: plugins are
unloaded, plugin processes stopped, and the applied state stays on disk for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from arcade_core.memory import tune_malloc

from .errors import AgentConfigError
from .settings import AgentSettings, parse_labels

__all__ = ["EXIT_BAD_CONFIG", "load_settings", "run", "setup_logging"]

log = logging.getLogger("arcade_agent")

EXIT_BAD_CONFIG = 2


def load_settings(
    *,
    server: str | None,
    home: Path | None,
    agent_id: str | None,
    labels: Sequence[str] | None,
    config: Path | None,
    enroll_token: str | None = None,
    ca_file: Path | None = None,
    ca_hash: str | None = None,
) -> AgentSettings:
    """Settings from flags over environment over config file, with the agent id resolved.

    Raises :class:`~arcade_agent.settings.AgentConfigError` with one line saying what to fix.
    """
    return AgentSettings.load(
        config, server=server, home=home, agent_id=agent_id,
        labels=parse_labels(list(labels)) if labels else None, enroll_token=enroll_token,
        ca_file=ca_file, ca_hash=ca_hash,
    ).resolved()


def setup_logging(level: str) -> None:
    """Log to stderr at ``level`` (raises :class:`AgentConfigError` for an unknown level)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise AgentConfigError(f"unknown log level {level!r}: use debug, info, warning or error")
    logging.basicConfig(
        level=numeric, stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


def run(settings: AgentSettings) -> None:
    """Run the agent until SIGTERM or SIGINT (blocking), in a process of its own: glibc's
    allocator is tuned first (:func:`~arcade_core.memory.tune_malloc`)."""
    tune_malloc()
    asyncio.run(_serve(settings))


async def _serve(settings: AgentSettings) -> None:
    from .agent import Agent

    agent = Agent(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.request_stop)
    log.info("arcade agent %s connecting to %s", settings.id, settings.server)
    try:
        await agent.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
