"""The ``arcade`` console script.

``arcade agent ...`` and ``arcade server ...`` go straight to their own argparse front ends
(:mod:`arcade_agent.__main__`, :mod:`arcade_server.__main__`), so the two long-running
processes never import the operator CLI's libraries (typer, rich, httpx): about 16 MB less
resident memory for the life of an agent, 8 MB for a server. Every other command goes to the
typer app in :mod:`arcade_server.cli`.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    if argv[:1] == ["agent"]:
        from arcade_agent.__main__ import main as agent_main

        sys.exit(agent_main(argv[1:], prog="arcade agent"))
    if argv[:1] == ["server"]:
        from arcade_server.__main__ import main as server_main

        sys.exit(server_main(argv[1:], prog="arcade server"))
    from arcade_server.cli import main as cli_main

    cli_main()
