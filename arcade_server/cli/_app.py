"""How an operator command is declared, parsed and run, and how it reaches the REST API.

A command is a :class:`Command`: its name, one-line help, a function that adds its arguments
to an argparse parser (made by :func:`arcade_core.commands.parser`, like every ``arcade``
command) and a function that runs it. Commands that call the API take ``--api``,
``--token`` and ``--ca-file`` (found the usual way when not given: :mod:`._credentials`).
The ``arcade.commands`` entry points name these
objects; calling one with ``(argv, prog=...)`` parses, runs and returns the exit status.
Every failure is one ``error:`` line on stderr (1: the request failed, 2: bad usage).

The REST client (:mod:`arcade_server.client`) is imported only when a command sends a
request (:func:`client`): ``arcade status --help`` does not pay for it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arcade_core.commands import parser as make_parser

from ._output import CommandError, fail, styled

if TYPE_CHECKING:
    from ..client import ArcadeClient

__all__ = ["Command", "client", "connection_options", "json_option", "parse_json_object",
           "parse_selector"]


API_HELP = ("REST API URL [env ARCADE_API, then the credentials file; default "
            "http://127.0.0.1:8080]")
TOKEN_HELP = "API token [env ARCADE_TOKEN, then the credentials file written by arcade login]"
CA_HELP = ("CA certificate to trust the server by (its ca.pem) [env ARCADE_CA_FILE, then the "
           "credentials file; default: the system's CAs]")


def connection_options(parser: argparse.ArgumentParser) -> None:
    """``--api``, ``--token`` and ``--ca-file``."""
    parser.add_argument("--api", metavar="URL", help=API_HELP)
    parser.add_argument("--token", metavar="TOKEN", help=TOKEN_HELP)
    parser.add_argument("--ca-file", metavar="FILE", help=CA_HELP)


@dataclass(frozen=True)
class Command:
    """An operator command; call it as ``command(argv, prog="arcade NAME")``."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    epilog: str | None = None
    api: bool = True  # takes --api, --token, --ca-file and --json
    #: Positionals may come after options (``NAME --agent ID [CONFIG]``, an optional
    #: positional); only for commands without subcommands (argparse's intermixed parsing).
    intermixed: bool = False

    def parser(self, prog: str | None = None) -> argparse.ArgumentParser:
        parser = make_parser(prog or f"arcade {self.name}", self.help, epilog=self.epilog)
        self.arguments(parser)
        if self.api:
            connection_options(parser)
            json_option(parser)
        return parser

    def __call__(self, argv: list[str] | None = None, *, prog: str | None = None) -> int:
        parser = self.parser(prog)
        args = parser.parse_intermixed_args(argv) if self.intermixed else parser.parse_args(argv)
        try:
            return int(self.run(args) or 0)
        except CommandError as exc:
            if exc.message:  # empty: the command has said why already
                sys.stdout.flush()
                sys.stderr.write(f"{styled('error:', 'bold red', sys.stderr)} {exc.message}\n")
            return exc.code


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", dest="as_json", action="store_true",
                        help="print JSON (for scripts)")


@contextmanager
def client(args: argparse.Namespace, timeout: float = 30.0) -> Iterator[ArcadeClient]:
    """An API client for the command, with the URL, token and CA it was given or finds
    (:func:`._credentials.resolve`); an :class:`ApiError` becomes its one-line error, naming
    ``arcade`` commands where the server's message names REST calls."""
    from ..client import ApiError, ArcadeClient
    from ._credentials import resolve

    found = resolve(args)
    try:
        api_client = ArcadeClient(found.api, token=found.token, ca_file=found.ca_file,
                                  timeout=timeout)
    except ApiError as exc:
        fail(exc.message)
    try:
        yield api_client
    except ApiError as exc:
        fail(exc.cli_message)
    finally:
        api_client.close()


def parse_selector(items: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` → ``{"k": "v"}``; bad usage (exit 2) for an item without ``=``."""
    selector: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--selector {item!r} must look like key=value", 2)
        selector[key.strip()] = value.strip()
    return selector


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    """A JSON object given on the command line; bad usage (exit 2) for anything else."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{what} is not valid JSON: {exc.msg} at column {exc.colno}", 2)
    if not isinstance(value, dict):
        fail(f"{what} must be a JSON object such as '{{\"interval\": 5}}'", 2)
    return value
