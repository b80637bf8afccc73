"""Running an agent as a service: settings from flags, logging, signals, the event loop.

Used by the agent's one front end, :mod:`arcade_agent.__main__` (argparse, so a long-running
agent process does not carry the operator CLI's libraries), which serves ``arcade agent`` and
``python -m arcade_agent``. SIGTERM and SIGINT stop the agent cleanly: plugins are
unloaded, plugin processes stopped, and the applied state stays on disk for the next start.
SIGHUP loads the settings again and applies their trust (``[[trust.keys]]``,
:mod:`arcade_agent.trust`) and their local plugins (``plugins:``, :mod:`arcade_agent.local`:
added, changed and removed entries take effect); a config that does not load is refused with
a logged error and the trust and plugins in force stay (other settings take effect at the
next start).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from arcade_core.memory import tune_malloc

from .errors import AgentConfigError, AgentNotStarted
from .log_settings import LOG_FORMAT, apply_log_settings
from .settings import AgentSettings, parse_labels

if TYPE_CHECKING:
    from .agent import Agent

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
    logging.basicConfig(level=numeric, stream=sys.stderr, format=LOG_FORMAT)


def run(settings: AgentSettings, *,
        reload: Callable[[], AgentSettings] | None = None) -> None:
    """Run the agent until SIGTERM or SIGINT (blocking), in a process of its own: glibc's
    allocator is tuned first (:func:`~arcade_core.memory.tune_malloc`). ``reload`` loads the
    settings again (as at start) for SIGHUP, which applies their trust. The ``[log]``
    settings (the rotating log file, the plugins' log rate) apply first."""
    tune_malloc()
    apply_log_settings(settings.log)
    asyncio.run(_serve(settings, reload))


async def _serve(settings: AgentSettings,
                 reload: Callable[[], AgentSettings] | None = None) -> None:
    from .agent import Agent

    agent = Agent(settings)
    loop = asyncio.get_running_loop()
    signals = [signal.SIGTERM, signal.SIGINT]
    for sig in signals:
        loop.add_signal_handler(sig, agent.request_stop)
    reloads: set[asyncio.Task[None]] = set()
    if reload is not None:
        def on_sighup() -> None:
            task = asyncio.create_task(_reload_trust(agent, reload), name="agent-sighup")
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        signals.append(signal.SIGHUP)
    log.info("arcade agent %s %s (%s)", settings.id,
             "standalone: no server" if settings.standalone
             else f"connecting to {settings.server_address}", settings.trust.describe())
    try:
        await agent.run()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        for task in list(reloads):
            task.cancel()


async def _reload_trust(agent: Agent, reload: Callable[[], AgentSettings]) -> None:
    """SIGHUP: load the settings again and trust their keys; a config that does not load
    is refused and the trust in force stays."""
    try:
        settings = await asyncio.to_thread(reload)
    except AgentConfigError as exc:
        log.error("SIGHUP: the new config was refused, keeping the old trust (%s): %s",
                  agent.settings.trust.describe(), exc)
        return
    agent.settings = dataclasses.replace(agent.settings, trust=settings.trust,
                                         plugins=settings.plugins)
    try:
        agent.reconciler.set_trust(settings.trust)
    except AgentNotStarted:  # not started yet: it starts with these settings
        log.info("SIGHUP: trust for the start: %s", settings.trust.describe())
    if agent.local is not None:
        await agent.local.apply(settings.plugins)
