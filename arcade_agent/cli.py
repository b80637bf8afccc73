"""``arcade agent``: run an agent in the foreground until SIGTERM or SIGINT.

:func:`agent_command` is a plain function with typer annotations; the ``arcade`` CLI
(:mod:`arcade_server.cli`) registers it as its ``agent`` command. Bad settings end the process
with one clear line and exit status 2; a signal stops the agent cleanly (plugins unloaded,
children stopped, state kept) and exits 0. ``python -m arcade_agent`` takes the same options
without loading typer (see :mod:`arcade_agent.__main__`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["agent_command"]


def agent_command(
    server: Annotated[str | None, typer.Option(
        "--server", "-s", help="The Arcade server's gRPC address, HOST:PORT "
        "(env ARCADE_AGENT_SERVER; default 127.0.0.1:9090).", show_default=False,
    )] = None,
    home: Annotated[Path | None, typer.Option(
        "--home", help="Where the agent keeps its id, state, plugin environments and wheel "
        "cache (env ARCADE_AGENT_HOME; default ~/.arcade/agent).", show_default=False,
    )] = None,
    agent_id: Annotated[str | None, typer.Option(
        "--id", help="The agent id (default: derived from the host, persisted in HOME).",
        show_default=False,
    )] = None,
    label: Annotated[list[str] | None, typer.Option(
        "--label", "-l", help="A label KEY=VALUE (repeatable); replaces labels from the "
        "config file.", show_default=False,
    )] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="A TOML or YAML file of agent settings (env "
        "ARCADE_AGENT_CONFIG).", show_default=False,
    )] = None,
    log_level: Annotated[str, typer.Option(
        "--log-level", help="debug, info, warning or error.",
    )] = "info",
) -> None:
    """Run an Arcade agent: connect to the server, apply its desired state, ship metrics."""
    from .service import EXIT_BAD_CONFIG, load_settings, run, setup_logging
    from .settings import AgentConfigError

    try:
        setup_logging(log_level)
        settings = load_settings(server=server, home=home, agent_id=agent_id, labels=label,
                                 config=config)
    except AgentConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_CONFIG) from None
    try:
        run(settings)
    except KeyboardInterrupt:  # a second Ctrl+C during shutdown
        raise typer.Exit(130) from None
