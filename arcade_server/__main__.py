"""``arcade server`` and ``python -m arcade_server``: run the server until SIGTERM/SIGINT.

The ``arcade`` dispatcher (:mod:`arcade_core.commands`) imports only this module for
``arcade server``, so a long-running server never loads the operator CLI or the agent.
Importing it checks that the ``server`` extra is installed (without importing it), so
``arcade server`` without it says which extra to install instead of a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from arcade_core.commands import parser as make_parser
from arcade_core.commands import require

__all__ = ["main"]

require("fastapi", "uvicorn", "sqlalchemy", "alembic", "grpc")


def main(argv: list[str] | None = None, *, prog: str = "python -m arcade_server") -> int:
    """Parse the options, serve until SIGTERM/SIGINT, return the exit status."""
    parser = make_parser(
        prog, "Run the Arcade server: REST API and gRPC for agents, in one process. "
        "Every option can also be set as ARCADE_SERVER_<NAME> or in the config file.",
    )
    arg = parser.add_argument
    arg("--home", type=Path, metavar="DIR", help="state directory [default ~/.arcade/server]")
    arg("--http-host", metavar="ADDRESS",
        help="REST address [default 127.0.0.1; beyond loopback it serves HTTPS]")
    arg("--grpc-host", metavar="ADDRESS", help="gRPC (agents, always TLS) address "
        "[default 127.0.0.1]")
    arg("--san", action="append", metavar="NAME",
        help="a DNS name or IP address agents and clients reach the server by, put in its "
        "certificate (repeat); loopback and the bind addresses are always in it")
    arg("--http-port", type=int, metavar="PORT", help="REST port [default 8080; 0 = any]")
    arg("--grpc-port", type=int, metavar="PORT", help="gRPC port [default 9090; 0 = any]")
    arg("--database", metavar="URL", help="database URL [default sqlite:///HOME/arcade.db]")
    arg("--config", type=Path, metavar="FILE", help="TOML config file")
    arg("--log-level", metavar="LEVEL", help="debug, info, warning, error")
    args = parser.parse_args(argv)

    import logging

    from .errors import SettingsError
    from .settings import Settings

    try:
        settings = Settings.load(
            args.config, home=args.home, http_host=args.http_host, grpc_host=args.grpc_host,
            san=args.san, http_port=args.http_port,
            grpc_port=args.grpc_port, database_url=args.database, log_level=args.log_level,
        )
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from .runner import run

    try:
        run(settings)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a database that cannot be reached, a failed migration, ...
        print(f"error: the server could not start: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
