"""``arcade logs NAME --agent ID [--follow] [--json]``: the last lines a plugin logged.

Read from the running agent through the server (``GET /agents/{id}/plugins/{name}/logs``):
a process plugin's stderr, an in-process plugin's own log records, and the agent's word on
the plugin's failed calls, crashes and failed loads. ``--follow`` asks again every
``--interval`` seconds (1 by default) for the lines after the last one printed, until Ctrl-C;
while the agent is offline or slow it says so once on stderr and keeps asking. ``--json``
prints the answer, or with ``--follow`` one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ._app import Command, client
from ._output import fail, print_json, styled

__all__ = ["logs"]

#: Statuses a follow outlives: the agent is offline (409) or did not answer in time (504).
_TRANSIENT = (409, 504)


def _logs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="the plugin's name")
    p.add_argument("--agent", required=True, metavar="ID", help="agent id")
    p.add_argument("--lines", "-n", type=int, default=100, metavar="N",
                   help="at most N lines, the newest (1-500) [default: 100]")
    p.add_argument("--after", type=int, default=0, metavar="SEQ",
                   help="only lines after sequence number SEQ")
    p.add_argument("--follow", "-f", action="store_true",
                   help="keep printing new lines until Ctrl-C")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="with --follow: how often to ask [default: 1]")


def _line(item: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(item["time"]))
    level = item["level"]
    style = {"ERROR": "red", "CRITICAL": "bold red", "WARNING": "yellow"}.get(level, "")
    return f"{stamp} {styled(f'{level:<7}', style) if style else f'{level:<7}'} {item['text']}"


def _print(lines: list[dict[str, Any]], as_json: bool) -> None:
    for item in lines:
        sys.stdout.write((json.dumps(item, sort_keys=True) if as_json else _line(item)) + "\n")
    sys.stdout.flush()


def _logs(args: argparse.Namespace) -> int:
    if not 1 <= args.lines <= 500:
        fail("--lines must be between 1 and 500", 2)
    if args.after < 0:
        fail("--after must be a sequence number >= 0", 2)
    if args.interval <= 0:
        fail("--interval must be a positive number of seconds", 2)
    try:
        with client(args) as api:
            first = api.plugin_logs(args.agent, args.name, after=args.after, limit=args.lines)
            if not args.follow:
                if args.as_json:
                    print_json(first)
                elif not first["lines"]:
                    print(f"no lines logged by {first['plugin']} on {args.agent} yet; follow "
                          f"it with arcade logs {first['plugin']} --agent {args.agent} -f")
                else:
                    _print(first["lines"], False)
                return 0
            _print(first["lines"], args.as_json)
            _follow(api, args, first["last_seq"])
    except KeyboardInterrupt:  # Ctrl-C is how a follow ends
        sys.stdout.flush()
    return 0


def _follow(api: Any, args: argparse.Namespace, after: int) -> None:
    from ..client import ApiError

    said = ""
    while True:
        time.sleep(args.interval)
        try:
            answer = api.plugin_logs(args.agent, args.name, after=after, limit=500)
        except ApiError as exc:
            if exc.status not in _TRANSIENT:
                raise
            if exc.message != said:
                said = exc.message
                sys.stderr.write(f"{styled('waiting:', 'yellow', sys.stderr)} {said}\n")
            continue
        said = ""
        if answer["last_seq"] < after:  # the agent restarted: its numbering starts again
            after = 0
            continue
        _print(answer["lines"], args.as_json)
        after = answer["last_seq"]


logs = Command("logs", "Show the last lines a plugin logged on an agent (its stderr, its log "
               "records, its failures); --follow for new ones.", _logs_args, _logs)
