"""What runs where, in numbers people read: ``arcade status``, ``metrics`` and ``versions``.

``arcade status --agent ID`` shows one agent's plugins, desired beside actual, with what
went wrong (error count, last error and its age, restarts), the last successful collect, and
a process plugin's pid and RSS, and under the table one line per plugin whose installed files
drifted (when, which; kept after the agent repaired it). Without ``--agent`` it shows the
fleet: every agent × plugin (``--selector`` to narrow) and the counts by state. The plugins
of an offline agent show their last known state marked ``(stale)``: it is not live.

The health fields (``errors``, ``error_at``, ``last_collect_at``, ``pid``, ``rss``) are read
with ``.get()``: a server that does not send them shows ``-``. ``--json`` prints everything
the API returned, raw.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from arcade_core.states import AgentPresence, Isolation, PluginState

from ._app import Command, client, parse_selector
from ._output import Cell, Table, ago, fail, print_json, size
from ._units import NO_ENTRIES, human_value, parse_since, short

__all__ = ["metrics", "status", "versions"]

NO_AGENTS = ("no agents yet: start one with `arcade agent --server HOST:PORT --enroll-token "
             "TOKEN --ca-hash sha256:…` (make a token with `arcade enroll create`)")

_STYLES: dict[str, str] = {PluginState.RUNNING: "green", PluginState.FAILED: "red",
                           PluginState.DEGRADED: "bold red",
                           PluginState.UNTRUSTED: "bold red", PluginState.DRIFTED: "bold red"}


def _state(actual: dict[str, Any] | None) -> Cell:
    """The state cell: ``pending`` before any report, ``running (stale)`` when stale,
    ``running (local)`` for a plugin of the agent's own config (not assigned here)."""
    if actual is None:
        return Cell(str(PluginState.PENDING), "dim")
    state = str(actual["state"]) + (" (local)" if actual.get("local") else "")
    if actual.get("stale"):
        return Cell(f"{state} (stale)", "dim")
    return Cell(state, _STYLES.get(str(actual["state"]), ""))


def _count(value: Any) -> str:
    return NO_ENTRIES if value is None else str(value)


def _rss(value: Any) -> str:
    return NO_ENTRIES if value is None else human_value(float(value), "bytes")


def _last_error(actual: dict[str, Any]) -> str:
    error = short(actual.get("error") or "")
    if not error:
        return ""
    at = actual.get("error_at")
    return f"{error} ({ago(at)})" if at else error


def _drift_line(name: str, actual: dict[str, Any]) -> list[str]:
    """``drift NAME (2m ago, repaired): path (changed), …`` for a plugin that drifted."""
    paths = actual.get("drift") or []
    if not paths:
        return []
    at = actual.get("drift_at")
    when = [ago(at)] if at else []
    if actual.get("state") != PluginState.DRIFTED:
        when.append("repaired")
    detail = f" ({', '.join(when)})" if when else ""
    return [f"drift {name}{detail}: {', '.join(str(x) for x in paths)}\n"]


def _process_lines(name: str, actual: dict[str, Any], agent: str) -> list[str]:
    """``limits NAME: memory 128Mi: watchdog`` for a process or exec plugin with limits in
    force, and ``malformed NAME: 3 protocol lines`` when its child wrote any."""
    lines = []
    limits = actual.get("limits")
    if limits and actual.get("isolation") in (Isolation.PROCESS, Isolation.EXEC):
        lines.append(f"limits {name}: {limits}\n")
    if actual.get("malformed"):
        lines.append(f"malformed {name}: {actual['malformed']} protocol lines that were not "
                     f"messages (see `arcade logs {name} --agent {agent}`)\n")
    return lines


def _interval(desired: dict[str, Any] | None) -> str:
    """The interval the agent is sent: ``5s``, or ``default`` (the agent's own)."""
    if not desired:
        return NO_ENTRIES
    seconds = desired.get("effective_interval") or 0
    return f"{seconds:g}s" if seconds else "default"


def _plugin_cells(p: dict[str, Any]) -> list[str | Cell]:
    d, a = p["desired"], p["actual"]
    if a is None:
        return [p["name"], d["version"] if d else NO_ENTRIES, NO_ENTRIES, _state(None),
                "", "", "", "", "", "", _interval(d)]
    collected = a.get("last_collect_at")
    return [p["name"], d["version"] if d else NO_ENTRIES, a["version"], _state(a),
            _count(a.get("restarts")), _count(a.get("errors")), _last_error(a),
            ago(collected) if collected else NO_ENTRIES,
            _count(a.get("pid")), _rss(a.get("rss")), _interval(d)]


_PLUGIN_HEADERS = ("plugin", "desired", "actual", "state", "restarts", "errors",
                   "last error", "collected", "pid", "rss", "interval")


def _status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", metavar="ID", help="one agent's plugins [default: the fleet]")
    p.add_argument("--selector", action="append", metavar="KEY=VALUE",
                   help="only agents with these labels: k=v or k=v,k2=v2 (repeatable)")


def _selector(items: list[str] | None) -> dict[str, str]:
    return parse_selector([part for item in items or [] for part in item.split(",") if part])


def _status(args: argparse.Namespace) -> None:
    if args.agent is not None and args.selector:
        fail("give --agent ID or --selector k=v, not both", 2)
    if args.agent is None:
        _fleet(args)
        return
    with client(args) as api:
        items = api.agent_plugins(args.agent)
    if args.as_json:
        print_json(items)
        return
    if not items:
        print(f"no plugins on {args.agent} yet: install one with `arcade install NAME "
              f"--agent {args.agent}`")
        return
    table = Table.of(*_PLUGIN_HEADERS)
    for p in items:
        table.add_row(*_plugin_cells(p))
    table.print()
    for p in items:
        print(*_drift_line(p["name"], p["actual"] or {}),
              *_process_lines(p["name"], p["actual"] or {}, args.agent), sep="", end="")
    if any((p["actual"] or {}).get("stale") for p in items):
        print(f"{args.agent} is offline: states are the last it reported (stale)")


def _fleet(args: argparse.Namespace) -> None:
    selector = _selector(args.selector)
    with client(args) as api:
        body = api.fleet_status(selector)
    if args.as_json:
        print_json(body)
        return
    if not body["agents"]:
        if selector:
            shown = ",".join(f"{k}={v}" for k, v in selector.items())
            print(f"no agents match {shown}: list agents and their labels with `arcade agents`")
        else:
            print(NO_AGENTS)
        return
    table = Table.of("agent", "status", *_PLUGIN_HEADERS[:7])
    for agent in body["agents"]:
        presence = Cell(AgentPresence.ONLINE, "green") if agent["online"] \
            else Cell(AgentPresence.OFFLINE, "red")
        if not agent["plugins"]:
            table.add_row(agent["id"], presence, NO_ENTRIES, "", "", "", "", "", "")
        for p in agent["plugins"]:
            table.add_row(agent["id"], presence, *_plugin_cells(p)[:7])
    table.print()
    states = ", ".join(f"{state} {n}" for state, n in body["states"].items()) or "none"
    stale = f" ({body['stale']} stale)" if body["stale"] else ""
    print(f"{len(body['agents'])} agent(s): {body['online']} online, {body['offline']} "
          f"offline; plugins: {states}{stale}")


status = Command("status", "Show what runs where: the fleet (every agent x plugin with "
                 "state counts) or one agent's plugins, desired beside actual, with errors.",
                 _status_args, _status)


def _metrics_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", required=True, metavar="ID", help="agent id")
    p.add_argument("--name", help="metric name or prefix*")
    p.add_argument("--latest", action="store_true",
                   help="only the newest value of each metric (per plugin and labels)")
    p.add_argument("--since", metavar="WHEN",
                   help="only values since: 10m, 2h, 7d, a Unix time or 2026-12-03T10:00")
    p.add_argument("--limit", type=int, default=50, help="at most this many values [50]")


def _metrics(args: argparse.Namespace) -> None:
    try:
        since = None if args.since is None else parse_since(args.since)
    except ValueError as exc:
        fail(str(exc), 2)
    if args.limit < 1:
        fail("--limit must be at least 1", 2)
    with client(args) as api:
        items = api.metric_values(args.agent, name=args.name, since=since, limit=args.limit,
                                  latest=args.latest)
    if args.as_json:
        print_json(items)
        return
    if not items:
        what = f"named {args.name} " if args.name else ""
        window = f"since {args.since} " if args.since else ""
        print(f"no metrics {what}{window}from {args.agent}: its plugins report them every "
              f"collect interval (see `arcade status --agent {args.agent}`)")
        return
    table = Table.of("time", "plugin", "name", "value", "labels")
    table.columns[3].justify = "right"
    for m in items:
        table.add_row(time.strftime("%H:%M:%S", time.localtime(m["timestamp"])), m["plugin"],
                      m["name"], human_value(m["value"], m["unit"]),
                      ",".join(f"{k}={v}" for k, v in sorted(m["labels"].items())))
    table.print()


metrics = Command("metrics", "Show an agent's stored metrics in their units (--latest: the "
                  "current value of each).", _metrics_args, _metrics)


def _versions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="the plugin whose versions to list, or "
                   "`delete` followed by NAME@VERSION to delete that version (refused "
                   "while it is assigned to an agent)")
    p.add_argument("spec", nargs="?", metavar="NAME@VERSION", help="after `delete`")


def _versions(args: argparse.Namespace) -> None:
    words: list[str] = [args.name] + ([args.spec] if args.spec is not None else [])
    if words[0] == "delete" and len(words) == 2:
        name, sep, version = words[1].partition("@")
        if not sep or not name or not version:
            fail(f"give the version to delete as NAME@VERSION, not {words[1]!r}", 2)
        with client(args) as api:
            api.delete_version(name, version)
        if args.as_json:
            print_json({"plugin": name, "version": version, "deleted": True})
        else:
            print(f"deleted {name}@{version}")
        return
    if len(words) != 1:
        fail("usage: arcade versions NAME, or arcade versions delete NAME@VERSION", 2)
    with client(args) as api:
        items = api.plugin_versions(words[0])
    if args.as_json:
        print_json(items)
        return
    if not items:
        print(f"no versions of {words[0]} are published: publish one with `arcade publish "
              "WHEEL...`")
        return
    table = Table.of("version", "type", "size", "sha256", "published", "summary")
    for v in items:
        table.add_row(v["version"], v["type"], size(v["size"]), v["sha256"][:12] + "…",
                      ago(v["created_at"]), v["summary"])
    table.print()


versions = Command("versions", "List a plugin's published versions, or delete one "
                   "(`arcade versions delete NAME@VERSION`).", _versions_args, _versions)
