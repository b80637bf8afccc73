"""The agent and desired-state commands: ``arcade agents``, ``status``, ``install``,
``uninstall``, ``config`` and ``metrics``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from arcade_core.states import AgentPresence, Isolation, PluginState

from ._access import shared_options
from ._app import Command, client, parse_json_object, parse_selector
from ._identity import revoke_agent
from ._output import Cell, Table, ago, fail, print_json

__all__ = ["agents", "config", "install", "metrics", "status", "uninstall"]


def _agents_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label", action="append", metavar="KEY=VALUE",
                   help="key=value filter (repeatable)")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    revoke = shared_options(sub.add_parser(
        "revoke", help="revoke an agent (admin): end its stream at once and refuse its "
        "certificates from now on; it can enroll again only with a new token"))
    revoke.add_argument("id", metavar="ID", help="agent id")


def _agents(args: argparse.Namespace) -> None:
    if args.action == "revoke":
        revoke_agent(args)
        return
    with client(args) as api:
        items = api.agents(labels=parse_selector(args.label))
    if args.as_json:
        print_json(items)
        return
    if not items:
        print("no agents have connected yet: arcade agent --server HOST:PORT")
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


agents = Command("agents", "List agents with their status (online/offline) and revisions; "
                 "`arcade agents revoke ID` revokes one.",
                 _agents_args, _agents)


def _status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", required=True, metavar="ID", help="agent id")


def _status(args: argparse.Namespace) -> None:
    with client(args) as api:
        items = api.agent_plugins(args.agent)
    if args.as_json:
        print_json(items)
        return
    table = Table.of("plugin", "desired", "actual", "state", "restarts", "error")
    for p in items:
        d, a = p["desired"], p["actual"]
        table.add_row(p["name"], d["version"] if d else "-", a["version"] if a else "-",
                      a["state"] if a else PluginState.PENDING, str(a["restarts"]) if a else "",
                      (a["error"] or "")[:80] if a else "")
    table.print()


status = Command("status", "Show an agent's plugins: desired and actual side by side.",
                 _status_args, _status)


def _failed_outcomes(body: dict[str, Any]) -> list[str]:
    """``AGENT: failed: ERROR`` for each agent whose report is a failure."""
    outcomes = body.get("states") or ({body["agent"]: body["state"]} if body.get("state") else {})
    return [f"{agent_id}: failed: {outcome['error'] or 'no error text'}"
            for agent_id, outcome in sorted(outcomes.items())
            if outcome and outcome["state"] == PluginState.FAILED]


def _finish(body: dict[str, Any], wait: float | None, what: str) -> int:
    """After a change's summary, when it waited: a failure (exit 1; one agent: the error line,
    several: one line each on stderr), the wait that ran out (exit 1), or the state reached."""
    if not wait:
        return 0
    state = body.get("state")
    if "agent" in body and state and state["state"] == PluginState.FAILED:
        fail(f"{body['plugin']}@{state['version']} failed on {body['agent']}: "
             f"{state['error'] or 'no error text'}")
    failed = _failed_outcomes(body)
    if failed:
        sys.stdout.flush()
        sys.stderr.write("".join(f"{line}\n" for line in failed))
        return 1
    if body.get("timed_out"):
        fail(f"timed out after {wait:g}s waiting for the agent(s) to report {what}")
    if "agent" in body and state:
        print(f"{body['agent']}: {state['state']}")
    return 0


def _install_report(body: dict[str, Any], wait: float | None) -> int:
    target = body.get("agent") or f"{body.get('matched', 0)} agent(s)"
    line = f"{body['plugin']}@{body['version']} assigned to {target}"
    if "revision" in body:
        line += f" (revision {body['revision']})"
    previous = body.get("previous_version")
    if previous:
        line += f", was {previous}: config and isolation {body['isolation']} kept"
    print(line)
    if "states" in body:
        print(f"running: {body.get('running', 0)}, failed: {body.get('failed', 0)}, "
              f"pending: {body['matched'] - body.get('running', 0) - body.get('failed', 0)}")
    return _finish(body, wait, "running or failed")


def _target_args(p: argparse.ArgumentParser, selector_help: str) -> None:
    p.add_argument("--agent", metavar="ID", help="agent id")
    p.add_argument("--selector", action="append", metavar="KEY=VALUE", help=selector_help)


def _wait_arg(p: argparse.ArgumentParser, until: str) -> None:
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help=f"seconds to wait until the agent(s) report {until} (exit 1 when the "
                   "time runs out or a plugin failed)")


def _install_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help="NAME@VERSION, NAME@RANGE or NAME")
    _target_args(p, "key=value label selector (repeat to AND; 'all' alone = every agent)")
    p.add_argument("--config", metavar="JSON", help="config as a JSON object [default: keep "
                   "the agent's current config of the plugin, checked against the new version]")
    p.add_argument("--reset-config", action="store_true",
                   help="use the new version's default config instead of keeping the current one")
    p.add_argument("--isolation", help="inline or process [default: keep the agent's current "
                   "one, else the plugin manifest's]")
    _wait_arg(p, "running or failed")


def _selector(items: list[str]) -> dict[str, str]:
    return {} if items == ["all"] else parse_selector(items)


def _one_target(args: argparse.Namespace) -> dict[str, Any]:
    if (args.agent is None) == (args.selector is None):
        fail("give exactly one of --agent ID or --selector k=v", 2)
    if args.agent is not None:
        return {"agent": args.agent}
    return {"selector": _selector(args.selector)}


def _install(args: argparse.Namespace) -> int:
    target = _one_target(args)
    if args.isolation is not None and args.isolation not in tuple(Isolation):
        fail(f"--isolation must be one of {', '.join(Isolation)}", 2)
    if args.reset_config and args.config is not None:
        fail("give either --config JSON or --reset-config, not both", 2)
    cfg = parse_json_object(args.config, "--config") if args.config is not None else None
    with client(args) as api:
        body = api.install_plugin(args.spec, config=cfg, isolation=args.isolation,
                                  reset_config=args.reset_config, wait=args.wait, **target)
    if args.as_json:
        print_json(body)
        failed = bool(_failed_outcomes(body)) if args.wait else False
        return 1 if failed or (args.wait and body.get("timed_out")) else 0
    return _install_report(body, args.wait)


install = Command("install", "Install a plugin version on one agent or on every agent "
                  "matching a selector (an upgrade keeps the config and isolation unless "
                  "given, or --reset-config).", _install_args, _install)


def _uninstall_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="plugin name")
    _target_args(p, "key=value")
    _wait_arg(p, "the plugin removed")


def _uninstall(args: argparse.Namespace) -> int:
    target = _one_target(args)
    with client(args) as api:
        body = api.uninstall_plugin(args.name, wait=args.wait, **target)
    if args.as_json:
        print_json(body)
        return 1 if args.wait and body.get("timed_out") else 0
    if args.agent is not None:
        print(f"{body['plugin']} removed from {args.agent} (revision {body['revision']})"
              + ("; the agent reported it removed" if args.wait and not body["timed_out"]
                 else ""))
    else:
        print(f"{body['plugin']} removed from {body['matched']} agent(s)")
    return _finish(body, args.wait, "the plugin removed")


uninstall = Command("uninstall", "Remove a plugin from an agent's desired state (or from "
                    "every matching agent).", _uninstall_args, _uninstall)


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="plugin name")
    p.add_argument("config", metavar="CONFIG", help="the new config, a JSON object")
    p.add_argument("--agent", required=True, metavar="ID", help="agent id")
    _wait_arg(p, "the new config applied")


def _config(args: argparse.Namespace) -> int:
    cfg = parse_json_object(args.config, "the config")
    with client(args) as api:
        body = api.change_config(args.agent, args.name, cfg, wait=args.wait)
    if args.as_json:
        print_json(body)
        return 1 if args.wait and (body.get("timed_out") or _failed_outcomes(body)) else 0
    print(f"{body['plugin']} on {args.agent}: config {json.dumps(body['config'])} "
          f"(revision {body['revision']})")
    return _finish(body, args.wait, "the new config applied")


config = Command("config", "Replace the config of a plugin assigned to an agent (validated "
                 "against its schema).", _config_args, _config)


def _metrics_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", required=True, metavar="ID", help="agent id")
    p.add_argument("--name", help="metric name or prefix*")
    p.add_argument("--limit", type=int, default=50)


def _metrics(args: argparse.Namespace) -> None:
    with client(args) as api:
        items = api.metrics(args.agent, name=args.name, limit=args.limit)
    if args.as_json:
        print_json(items)
        return
    table = Table.of("time", "plugin", "name", "value", "unit", "labels")
    for m in items:
        table.add_row(time.strftime("%H:%M:%S", time.localtime(m["timestamp"])), m["plugin"],
                      m["name"], f"{m['value']:.4g}", m["unit"],
                      ",".join(f"{k}={v}" for k, v in sorted(m["labels"].items())))
    table.print()


metrics = Command("metrics", "Show an agent's latest stored metrics.", _metrics_args, _metrics)
