"""The agent identity commands: ``arcade enroll create|list|delete`` and
``arcade agents revoke ID`` (its handler; the ``agents`` command lives in :mod:`._agents`)."""

from __future__ import annotations

import argparse
import sys

from ._access import parse_duration, shared_options, when
from ._app import Command, client, parse_selector
from ._output import Table, fail, print_json

__all__ = ["enroll", "revoke_agent"]


def _enroll_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = shared_options(sub.add_parser(
        "create", help="create an enrollment token (its secret is printed once)"))
    create.add_argument("--labels", "--label", dest="labels", nargs="+", action="extend",
                        metavar="KEY=VALUE",
                        help="labels bound to every agent enrolled with it (they win over "
                        "the agent's own)")
    create.add_argument("--ttl", metavar="DURATION", default="1h",
                        help="expire after this long: 3600, 30m, 12h, 7d [1h]")
    create.add_argument("--uses", type=int, metavar="N",
                        help="how many agents may enroll with it [any until it expires]")
    create.add_argument("--name", default="", help="a note for operators")
    shared_options(sub.add_parser("list", help="list enrollment tokens (never their secrets)"))
    delete = shared_options(sub.add_parser(
        "delete", help="delete a token (agents enrolled with it keep their certificates)"))
    delete.add_argument("id", metavar="ID", help="the token's id (see `arcade enroll list`)")


def _enroll(args: argparse.Namespace) -> None:
    if args.action == "create":
        if args.uses is not None and args.uses < 1:
            fail(f"--uses {args.uses}: at least 1 (or leave it out: any number until it "
                 "expires)", 2)
        labels = parse_selector(args.labels)
        with client(args) as api:
            created = api.create_enrollment_token(labels=labels, ttl=parse_duration(args.ttl),
                                                  uses=args.uses, name=args.name)
        if args.as_json:
            print_json(created)
            return
        print(f"created enrollment token {created['id']} (expires {when(created['expires_at'])}"
              + (f", {created['max_uses']} use(s)" if created["max_uses"] else "")
              + "); start an agent with:", file=sys.stderr)
        print(f"  arcade agent --server HOST:PORT --id ID --enroll-token {created['token']} "
              f"--ca-hash {created['ca_hash']}", file=sys.stderr)
        print(created["token"])
        return
    if args.action == "delete":
        with client(args) as api:
            api.delete_enrollment_token(args.id)
        print(f"deleted enrollment token {args.id}")
        return
    with client(args) as api:
        items = api.enrollment_tokens()
    if args.as_json:
        print_json(items)
        return
    if not items:
        print("no enrollment tokens: create one with `arcade enroll create` and start an "
              "agent with it")
        return
    table = Table.of("id", "name", "labels", "uses", "state", "created", "expires")
    for item in items:
        uses = f"{item['uses']}/{item['max_uses']}" if item["max_uses"] else str(item["uses"])
        bound = ",".join(f"{k}={v}" for k, v in sorted(item["labels"].items()))
        table.add_row(item["id"], item["name"], bound, uses,
                      "usable" if item["usable"] else "spent", when(item["created_at"]),
                      when(item["expires_at"]))
    table.print()


enroll = Command("enroll", "Create, list and delete agent enrollment tokens (admin).",
                 _enroll_args, _enroll)


def revoke_agent(args: argparse.Namespace) -> None:
    """``arcade agents revoke ID``: end the agent's stream, refuse its certificates."""
    with client(args) as api:
        revoked = api.revoke_agent(args.id)
    if args.as_json:
        print_json(revoked)
        return
    print(f"revoked agent {revoked['agent_id']} (certificate {revoked['fingerprint'][:16]}…); "
          + ("its stream was ended" if revoked["stream_closed"] else "it was not connected here")
          + "; it can come back only by enrolling with a new token")
