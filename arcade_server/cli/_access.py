"""The access commands: ``arcade login``, ``arcade tokens create|list|revoke`` and
``arcade audit``."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
import time
from datetime import datetime
from pathlib import Path

from ._app import API_HELP, CA_HELP, TOKEN_HELP, Command, client
from ._output import Table, ago, fail, print_json

__all__ = ["audit", "login", "parse_duration", "parse_time", "shared_options", "tokens", "when"]

ROLES = ("viewer", "publisher", "operator", "admin")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_duration(text: str) -> float:
    """``90``, ``30s``, ``15m``, ``12h``, ``30d``, ``2w`` → seconds (bad usage otherwise)."""
    match = _DURATION.match(text)
    try:
        seconds = float(text) if match is None else float(match.group(1)) * _UNITS[
            match.group(2).lower()]
    except ValueError:
        fail(f"{text!r} is not a duration; use seconds or a suffix: 30s, 15m, 12h, 30d, 2w", 2)
    if not 0 < seconds < float("inf"):
        fail(f"{text!r}: a duration must be positive", 2)
    return seconds


def parse_time(text: str, *, now: float | None = None) -> float:
    """A point in time: ``1h`` (ago; any duration with a unit), an ISO date or date-time
    (local time unless it names a zone), or seconds since the epoch."""
    now = time.time() if now is None else now
    if _DURATION.match(text):
        return now - parse_duration(text)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        fail(f"{text!r} is not a time: use 1h (ago), 2026-01-31, 2026-01-31T12:00 or "
             "seconds since the epoch", 2)


def when(value: float | None) -> str:
    return "-" if value is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(value))


# ---------------------------------------------------------------- login


def _login_args(_p: argparse.ArgumentParser) -> None:
    """--api, --token and --ca-file come with every API command."""


def _read_token() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("API token: ").strip()
    return sys.stdin.readline().strip()


def _login(args: argparse.Namespace) -> None:
    import os

    from ._credentials import Credentials, resolve, save

    if not (args.token or os.environ.get("ARCADE_TOKEN")):
        args.token = _read_token()
        if not args.token:
            fail("no token given: pass --token, set ARCADE_TOKEN or type it when asked", 2)
    found = resolve(args)
    if found.ca_file is not None:
        found = Credentials(found.api, found.token, str(Path(found.ca_file).absolute()))
    with client(args) as api:
        me = api.whoami()
    path = save(found)
    if args.as_json:
        print_json({**me, "api": found.api, "credentials": str(path)})
    else:
        print(f"logged in to {found.api} as {me['name']} ({me['role']}); credentials "
              f"saved in {path}")


login = Command("login", "Check an API token against the server and save it (with the "
                "server's URL and CA) for the other commands.", _login_args, _login,
                epilog="The token is read from --token, ARCADE_TOKEN, or asked for. The "
                "credentials file is $XDG_CONFIG_HOME/arcade/credentials "
                "(~/.config/arcade/credentials), mode 0600.")


# ---------------------------------------------------------------- tokens


def shared_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The connection options and --json after the action too (``arcade tokens list
    --json``), without overriding them when given before it."""
    parser.add_argument("--api", metavar="URL", help=API_HELP, default=argparse.SUPPRESS)
    parser.add_argument("--token", metavar="TOKEN", help=TOKEN_HELP, default=argparse.SUPPRESS)
    parser.add_argument("--ca-file", metavar="FILE", help=CA_HELP, default=argparse.SUPPRESS)
    parser.add_argument("--json", dest="as_json", action="store_true",
                        default=argparse.SUPPRESS, help="print JSON (for scripts)")
    return parser


def _tokens_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = shared_options(sub.add_parser("create", help="create a token (its secret is printed "
                                    "once)"))
    create.add_argument("name", metavar="NAME", help="unique name (the audit log shows it)")
    create.add_argument("--role", required=True, choices=ROLES, help="what it may do")
    create.add_argument("--ttl", metavar="DURATION",
                        help="expire after this long: 3600, 12h, 30d [default: never]")
    shared_options(sub.add_parser("list", help="list tokens (never their secrets)"))
    revoke = shared_options(sub.add_parser("revoke", help="revoke a token (effective within a "
                                    "second)"))
    revoke.add_argument("name", metavar="NAME", help="the token's name or id")


def _tokens(args: argparse.Namespace) -> None:
    if args.action == "create":
        ttl = parse_duration(args.ttl) if args.ttl is not None else None
        with client(args) as api:
            created = api.create_token(args.name, args.role, ttl=ttl)
        if args.as_json:
            print_json(created)
            return
        print(f"created token {created['name']!r} ({created['role']}"
              + (f", expires {when(created['expires_at'])}" if created["expires_at"] else "")
              + "); its secret, shown only this once:", file=sys.stderr)
        print(created["token"])
        return
    if args.action == "revoke":
        with client(args) as api:
            revoked = api.revoke_token(args.name)
        if args.as_json:
            print_json(revoked)
        else:
            print(f"revoked token {revoked['name']!r} ({revoked['role']})")
        return
    with client(args) as api:
        items = api.tokens()
    if args.as_json:
        print_json(items)
        return
    if not items:
        print("no API tokens: create one with `arcade tokens create NAME --role viewer`")
        return
    table = Table.of("id", "name", "role", "state", "created", "expires", "last used")
    for item in items:
        state = "active" if item["active"] else ("revoked" if item["revoked_at"] else "expired")
        table.add_row(str(item["id"]), item["name"], item["role"], state,
                      when(item["created_at"]), when(item["expires_at"]),
                      ago(item["last_used_at"]))
    table.print()


tokens = Command("tokens", "Create, list and revoke API tokens (admin).", _tokens_args,
                 _tokens)


# ---------------------------------------------------------------- audit


def _audit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", metavar="TIME", help="from: 1h (ago), 2026-01-31T12:00, epoch")
    p.add_argument("--until", metavar="TIME", help="before: same forms as --since")
    p.add_argument("--actor", metavar="NAME", help="token name or agent id")
    p.add_argument("--target", metavar="PATH",
                   help="what was acted on, e.g. agents/web-1 (and what is below it)")
    p.add_argument("--limit", type=int, default=100, help="most rows [100]")


def _audit(args: argparse.Namespace) -> None:
    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    with client(args) as api:
        items = api.audit(since=since, until=until, actor=args.actor, target=args.target,
                          limit=args.limit)
    if args.as_json:
        print_json(items)
        return
    if not items:
        print("no audit entries match: widen --since/--until or drop --actor/--target"
              if any((args.since, args.until, args.actor, args.target)) else
              "the audit log is empty: every POST, PUT, PATCH and DELETE is recorded here")
        return
    table = Table.of("time", "actor", "role", "from", "action", "target", "outcome")
    for row in items:
        table.add_row(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["at"])),
                      row["actor"], row["role"], row["remote"], row["action"], row["target"],
                      row["outcome"])
    table.print()


audit = Command("audit", "Show the audit log, newest first (admin).", _audit_args, _audit)
