"""The agent and desired-state commands: ``arcade agents`` (list, ``revoke``, ``delete``),
``install``, ``uninstall`` and ``config`` (``status`` and ``metrics``: :mod:`._status`)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from arcade_core.states import AgentPresence, Isolation, PluginState

from .._client_assign import KEEP
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
    print(line + _overrides_text(body))
    if "states" in body:
        print(f"running: {body.get('running', 0)}, failed: {body.get('failed', 0)}, "
              f"pending: {body['matched'] - body.get('running', 0) - body.get('failed', 0)}")
    return _finish(body, wait, "running or failed")


def _overrides_text(body: dict[str, Any]) -> str:
    """``; interval 5s; limits memory=128Mi cpu=100m`` for what the assignment sets."""
    text = ""
    if body.get("interval") is not None:
        text += f"; interval {body['interval']:g}s"
    limits = body.get("resources") or {}
    if limits:
        text += "; limits " + " ".join(f"{k}={v}" for k, v in sorted(limits.items()))
    return text


def _seconds(text: str) -> float:
    """``--interval``'s value: a positive finite number of seconds (the server checks the
    bounds and says them)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds (such as 5 or 0.5)") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds")
    return value


def _seconds_or_default(text: str) -> float | None:
    """``arcade config``'s ``--interval``: seconds, or ``default`` (none set)."""
    return None if text == "default" else _seconds(text)


def _limit_args(p: argparse.ArgumentParser, kept: str) -> None:
    for kind, example, what in (("memory", "128Mi", "bytes: 128Mi, 1Gi, 500M"),
                                ("cpu", "100m", "cores: 100m = a tenth of a core, 0.5, 2"),
                                ("disk", "1Gi", "bytes, as --memory")):
        p.add_argument(f"--{kind}", metavar="QUANTITY",
                       help=f"{kind} limit overriding the manifest's ({what}; e.g. {example}) "
                       f"[default: {kept}]")


def _limits(args: argparse.Namespace) -> dict[str, str] | None:
    given = {kind: getattr(args, kind) for kind in ("memory", "cpu", "disk")
             if getattr(args, kind) is not None}
    return given or None


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
    p.add_argument("--isolation", help="inline or process for a Python plugin, exec for an "
                   "exec plugin [default: keep the agent's current one, else the plugin "
                   "manifest's]")
    p.add_argument("--interval", type=_seconds, metavar="SECONDS",
                   help="seconds between collects, whatever the plugin's config schema "
                   "[default: keep the agent's current one (--reset-config: none), else the "
                   "manifest's, else the agent's default]")
    _limit_args(p, "keep the agent's current one, else the manifest's")
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
                                  reset_config=args.reset_config, interval=args.interval,
                                  resources=_limits(args), wait=args.wait, **target)
    if args.as_json:
        print_json(body)
        failed = bool(_failed_outcomes(body)) if args.wait else False
        return 1 if failed or (args.wait and body.get("timed_out")) else 0
    return _install_report(body, args.wait)


install = Command("install", "Install a plugin version on one agent or on every agent "
                  "matching a selector (an upgrade keeps the config, isolation, interval and "
                  "limits unless given, or --reset-config).", _install_args, _install)


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
    p.add_argument("config", metavar="CONFIG", nargs="?",
                   help="the new config, a JSON object [default: keep it]")
    p.add_argument("--agent", required=True, metavar="ID", help="agent id")
    p.add_argument("--interval", type=_seconds_or_default, default=KEEP, metavar="SECONDS",
                   help="seconds between collects, or 'default' for the manifest's (else the "
                   "agent's) [default: keep it]")
    _limit_args(p, "keep it")
    p.add_argument("--no-limits", action="store_true",
                   help="drop the limits set for this assignment (the manifest's apply)")
    _wait_arg(p, "the change applied")


def _config(args: argparse.Namespace) -> int:
    limits = _limits(args)
    if args.no_limits and limits:
        fail("give --no-limits or --memory/--cpu/--disk, not both", 2)
    if args.config is None and args.interval is KEEP and limits is None and not args.no_limits:
        fail("nothing to change: give CONFIG (a JSON object), --interval, --memory, --cpu, "
             "--disk or --no-limits", 2)
    cfg = parse_json_object(args.config, "the config") if args.config is not None else None
    changes: dict[str, Any] = {"config": cfg, "interval": args.interval}
    if args.no_limits or limits:
        changes["resources"] = limits  # None: --no-limits
    with client(args) as api:
        body = api.update_plugin(args.agent, args.name, **changes, wait=args.wait)
    if args.as_json:
        print_json(body)
        return 1 if args.wait and (body.get("timed_out") or _failed_outcomes(body)) else 0
    print(f"{body['plugin']} on {args.agent}: config {json.dumps(body['config'])}"
          f"{_overrides_text(body)} (revision {body['revision']})")
    only_config = args.interval is KEEP and "resources" not in changes
    return _finish(body, args.wait,
                   "the new config applied" if only_config else "the change applied")


config = Command("config", "Change a plugin assigned to an agent in place: its config "
                 "(validated against its schema), --interval, or its limits (--memory, --cpu, "
                 "--disk).", _config_args, _config, intermixed=True)
