"""``python -m arcade_server``: the same options as ``arcade server``, parsed with argparse.

``arcade server`` comes here too (see :mod:`arcade_server._entry`): a long-running server
never imports the operator CLI's libraries (typer's rich output, the httpx client), about
8 MB less resident memory for the life of the process.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None, *, prog: str = "python -m arcade_server") -> int:
    """Parse the options, serve until SIGTERM/SIGINT, return the exit status."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the Arcade server: REST API and gRPC for agents, in one process. "
        "Every option can also be set as ARCADE_SERVER_<NAME> or in the config file.",
    )
    parser.add_argument("--home", type=Path,
                        help="state directory [default ~/.arcade/server]")
    parser.add_argument("--host", help="address to listen on [default 127.0.0.1]")
    parser.add_argument("--http-port", type=int, help="REST port [default 8080; 0 = any]")
    parser.add_argument("--grpc-port", type=int, help="gRPC port [default 9090; 0 = any]")
    parser.add_argument("--database", help="database URL [default sqlite:///HOME/arcade.db]")
    parser.add_argument("--config", type=Path, help="TOML config file")
    parser.add_argument("--log-level", help="debug, info, warning, error")
    args = parser.parse_args(argv)

    import logging

    from .settings import Settings, SettingsError

    try:
        settings = Settings.load(
            args.config, home=args.home, host=args.host, http_port=args.http_port,
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
