"""The agent and desired-state commands: ``arcade agents`` (list, ``revoke``, ``delete``),
``install``, ``uninstall`` and ``config`` (``status`` and ``metrics``: :mod:`._status`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from arcade_core.states import AgentPresence, Isolation, PluginState

from ._access import shared_options
from ._app import Command, client, parse_json_object, parse_selector
from ._identity import revoke_agent
from ._output import Cell, Table, ago, fail, print_json
from ._status import NO_AGENTS

__all__ = ["agents", "config", "install", "uninstall"]


def _agents_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label", action="append", metavar="KEY=VALUE",
                   help="key=value filter (repeatable)")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    revoke = shared_options(sub.add_parser(
        "revoke", help="revoke an agent (admin): end its stream at once and refuse its "
        "certificates from now on; it can enroll again only with a new token"))
    revoke.add_argument("id", metavar="ID", help="agent id")
    delete = shared_options(sub.add_parser(
        "delete", help="delete an agent gone for good (admin): its plugins, metrics and jobs, "
        "and revoke its identity so it cannot come back unless enrolled again"))
    delete.add_argument("id", metavar="ID", help="agent id")
    delete.add_argument("--force", action="store_true",
                        help="delete it even while it is online (its stream is closed)")


def _agents(args: argparse.Namespace) -> None:
    if args.action == "revoke":
        revoke_agent(args)
        return
    if args.action == "delete":
        _delete(args)
        return
    with client(args) as api:
        items = api.agents(labels=parse_selector(args.label))
    if args.as_json:
        print_json(items)
        return
    if not items:
        print(NO_AGENTS if not args.label else
              "no agents have all these labels: list every agent with `arcade agents`")
        return
    table = Table.of("id", "status", "hostname", "ip", "os/arch", "labels", "revision",
                     "last seen")
    for a in items:
        status = Cell(AgentPresence.ONLINE, "green") if a["online"] \
            else Cell(AgentPresence.OFFLINE, "red")
        labels = ",".join(f"{k}={v}" for k, v in sorted(a["labels"].items()))
        table.add_row(a["id"], status, a["hostname"], a["ip"], f"{a['os']}/{a['arch']}", labels,
                      f"{a['applied_revision']}/{a['desired_revision']}", ago(a["last_seen"]))
    table.print()


def _delete(args: argparse.Namespace) -> None:
    with client(args) as api:
        body = api.delete_agent(args.id, force=args.force)
    if args.as_json:
        print_json(body)
        return
    rows = body["rows"]
    print(f"deleted agent {body['agent']} ({rows['plugins']} plugin state(s), "
          f"{rows['metrics']} metric(s), {rows['jobs']} job(s)); its identity is revoked"
          + (" and its stream closed" if body.get("stream_closed") else ""))


agents = Command("agents", "List agents with their status (online/offline) and revisions; "
                 "`arcade agents revoke ID` revokes one, `arcade agents delete ID` removes it.",
                 _agents_args, _agents)


def _install_report(status: int, body: dict[str, Any], wait: float | None) -> int:
    state = body.get("state")
    target = body.get("agent") or f"{body.get('matched', 0)} agent(s)"
    print(f"{body['plugin']}@{body['version']} assigned to {target}"
          + (f" (revision {body['revision']})" if "revision" in body else ""))
    if "states" in body:
        print(f"running: {body.get('running', 0)}, failed: {body.get('failed', 0)}, "
              f"pending: {body['matched'] - body.get('running', 0) - body.get('failed', 0)}")
        if body.get("failed"):
            sys.stdout.flush()
            for agent_id, outcome in sorted(body["states"].items()):
                if outcome and outcome["state"] == PluginState.FAILED:
                    sys.stderr.write(f"{agent_id}: failed: {outcome['error']}\n")
            return 1
    elif wait and status == 200 and state:
        if state["state"] == PluginState.FAILED:
            fail(f"{body['plugin']}@{body['version']} failed on {body['agent']}: "
                 f"{state['error'] or 'no error text'}")
        print(f"{body['agent']}: {state['state']}")
    if wait and status == 202:
        fail(f"timed out after {wait:g}s waiting for the agent(s) to report running or failed")
    return 0


def _target_args(p: argparse.ArgumentParser, selector_help: str) -> None:
    p.add_argument("--agent", metavar="ID", help="agent id")
    p.add_argument("--selector", action="append", metavar="KEY=VALUE", help=selector_help)


def _install_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help="NAME@VERSION, NAME@RANGE or NAME")
    _target_args(p, "key=value label selector (repeat to AND; 'all' alone = every agent)")
    p.add_argument("--config", metavar="JSON", help="config as a JSON object")
    p.add_argument("--isolation", help="inline or process [default: the plugin manifest's]")
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="seconds to wait for running/failed")


def _selector(items: list[str]) -> dict[str, str]:
    return {} if items == ["all"] else parse_selector(items)


def _install(args: argparse.Namespace) -> int:
    if (args.agent is None) == (args.selector is None):
        fail("give exactly one of --agent ID or --selector k=v", 2)
    if args.isolation is not None and args.isolation not in tuple(Isolation):
        fail(f"--isolation must be one of {', '.join(Isolation)}", 2)
    cfg = parse_json_object(args.config, "--config") if args.config is not None else None
    options = {"config": cfg, "isolation": args.isolation, "wait": args.wait}
    with client(args) as api:
        if args.agent is not None:
            status, body = api.install(args.agent, args.spec, **options)
        else:
            status, body = api.install_selector(_selector(args.selector), args.spec, **options)
    if args.as_json:
        print_json(body)
        failed = (body.get("state") or {}).get("state") == PluginState.FAILED or body.get("failed")
        return 1 if failed or (args.wait and status == 202) else 0
    return _install_report(status, body, args.wait)


install = Command("install", "Install a plugin version on one agent or on every agent "
                  "matching a selector.", _install_args, _install)


def _uninstall_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="plugin name")
    _target_args(p, "key=value")


def _uninstall(args: argparse.Namespace) -> None:
    if (args.agent is None) == (args.selector is None):
        fail("give exactly one of --agent ID or --selector k=v", 2)
    with client(args) as api:
        if args.agent is not None:
            body = api.uninstall(args.agent, args.name)
        else:
            body = api.uninstall_selector(_selector(args.selector), args.name)
    if args.as_json:
        print_json(body)
    elif args.agent is not None:
        print(f"{body['plugin']} removed from {args.agent} (revision {body['revision']})")
    else:
        print(f"{body['plugin']} removed from {body['matched']} agent(s)")


uninstall = Command("uninstall", "Remove a plugin from an agent's desired state (or from "
                    "every matching agent).", _uninstall_args, _uninstall)


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="plugin name")
    p.add_argument("config", metavar="CONFIG", help="the new config, a JSON object")
    p.add_argument("--agent", required=True, metavar="ID", help="agent id")


def _config(args: argparse.Namespace) -> None:
    cfg = parse_json_object(args.config, "the config")
    with client(args) as api:
        body = api.set_config(args.agent, args.name, cfg)
    if args.as_json:
        print_json(body)
    else:
        print(f"{body['plugin']} on {args.agent}: config {json.dumps(body['config'])} "
              f"(revision {body['revision']})")


config = Command("config", "Replace the config of a plugin assigned to an agent (validated "
                 "against its schema).", _config_args, _config)
