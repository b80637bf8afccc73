"""The ``arcade`` console script.

``arcade agent ...`` goes straight to the agent's own argparse front end
(:mod:`arcade_agent.__main__`), so a long-running agent never imports the operator CLI's
libraries (typer, rich, httpx): about 16 MB less resident memory for the life of the agent.
Every other command goes to the typer app in :mod:`arcade_server.cli`.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    if argv[:1] == ["agent"]:
        from arcade_agent.__main__ import main as agent_main

        sys.exit(agent_main(argv[1:], prog="arcade agent"))
    from arcade_server.cli import main as cli_main

    cli_main()
