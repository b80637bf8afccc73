"""``arcade agent`` and ``python -m arcade_agent``: run an agent until SIGTERM/SIGINT.

The ``arcade`` dispatcher (:mod:`arcade_core.commands`) imports only this module for
``arcade agent``, so a long-running agent never loads the operator CLI or the server.
Importing it checks that the ``agent`` extra is installed (without importing it), so
``arcade agent`` without it says which extra to install instead of a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from arcade_core.commands import parser as make_parser
from arcade_core.commands import require

__all__ = ["main"]

require("grpc", "google.protobuf")


def main(argv: list[str] | None = None, *, prog: str = "python -m arcade_agent") -> int:
    """Parse the options, run the agent until SIGTERM/SIGINT, return the exit status."""
    parser = make_parser(
        prog, "Run an Arcade agent: connect to the server, apply its desired state, "
        "ship metrics.",
    )
    arg = parser.add_argument
    arg("--server", "-s", metavar="HOST:PORT", help="the server's gRPC address HOST:PORT "
        "(env ARCADE_AGENT_SERVER; default 127.0.0.1:9090, or none: standalone, when the "
        "config declares local plugins)")
    arg("--home", type=Path, metavar="DIR", help="the agent's directory (env "
        "ARCADE_AGENT_HOME; default ~/.arcade/agent)")
    arg("--id", dest="agent_id", metavar="ID", help="the agent id (default: derived from "
        "the host, persisted in HOME)")
    arg("--label", "-l", action="append", metavar="KEY=VALUE", help="KEY=VALUE (repeatable)")
    arg("--enroll-token", metavar="TOKEN", help="first start: the enrollment token to "
        "exchange for the agent's certificate (env ARCADE_AGENT_ENROLL_TOKEN, which keeps it "
        "out of the process list)")
    arg("--ca-file", type=Path, metavar="FILE", help="the server's CA certificate (first "
        "start; env ARCADE_AGENT_CA_FILE)")
    arg("--ca-hash", metavar="sha256:HEX", help="or the pin of the server's CA public key: "
        "the CA is fetched from the server and checked against it (env ARCADE_AGENT_CA_HASH)")
    arg("--config", "-c", type=Path, metavar="FILE", help="a TOML or YAML settings file")
    arg("--log-level", default="info", metavar="LEVEL", help="debug, info, warning or error")
    args = parser.parse_args(argv)

    from .service import EXIT_BAD_CONFIG, load_settings, run, setup_logging
    from .settings import AgentConfigError, AgentSettings

    def load() -> AgentSettings:  # at start, and again on SIGHUP (for the trust)
        return load_settings(server=args.server, home=args.home, agent_id=args.agent_id,
                             labels=args.label, config=args.config,
                             enroll_token=args.enroll_token, ca_file=args.ca_file,
                             ca_hash=args.ca_hash)

    try:
        setup_logging(args.log_level)
        settings = load()
    except AgentConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    from .errors import AgentError

    try:
        run(settings, reload=load)
    except KeyboardInterrupt:
        return 130
    except AgentError as exc:  # enrollment refused, a certificate of another agent, ...
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())
