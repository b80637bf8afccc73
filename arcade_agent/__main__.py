"""``python -m arcade_agent``: the same options as ``arcade agent``, parsed with argparse.

A long-running agent started this way (e.g. by systemd) does not load typer, rich or the
operator CLI's HTTP client.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None, *, prog: str = "python -m arcade_agent") -> int:
    """Parse the options, run the agent until SIGTERM/SIGINT, return the exit status."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run an Arcade agent: connect to the server, apply its desired state, "
        "ship metrics.",
    )
    parser.add_argument("--server", "-s", help="the server's gRPC address HOST:PORT "
                        "(env ARCADE_AGENT_SERVER; default 127.0.0.1:9090)")
    parser.add_argument("--home", type=Path, help="the agent's directory (env "
                        "ARCADE_AGENT_HOME; default ~/.arcade/agent)")
    parser.add_argument("--id", dest="agent_id", help="the agent id (default: derived from "
                        "the host, persisted in HOME)")
    parser.add_argument("--label", "-l", action="append", help="KEY=VALUE (repeatable)")
    parser.add_argument("--config", "-c", type=Path, help="a TOML or YAML settings file")
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error")
    args = parser.parse_args(argv)

    from .service import EXIT_BAD_CONFIG, load_settings, run, setup_logging
    from .settings import AgentConfigError

    try:
        setup_logging(args.log_level)
        settings = load_settings(server=args.server, home=args.home, agent_id=args.agent_id,
                                 labels=args.label, config=args.config)
    except AgentConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        run(settings)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
