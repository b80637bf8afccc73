"""The ``arcade`` command line: run the server, publish plugins, manage desired state.

Operator commands talk to the REST API (``--api URL``, default ``$ARCADE_API`` or
``http://127.0.0.1:8080``), print readable tables, or JSON with ``--json`` for scripts. Every
error is one clear line on stderr and a non-zero exit (1: the request failed, 2: bad usage),
never a traceback. Importing this module is cheap: the server (FastAPI, SQLAlchemy, grpc) is
imported only by ``arcade server``, the agent only by ``arcade agent``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

from .client import ApiError, ArcadeClient, default_api_url

__all__ = ["app", "main"]

app = typer.Typer(
    name="arcade",
    help="Arcade: plugins for agent fleets. Run the server, publish plugins, install them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ApiOption = Annotated[
    str | None,
    typer.Option("--api", help="REST API URL [env ARCADE_API; default http://127.0.0.1:8080]",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON (for scripts)")]


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


@contextmanager
def _client(api: str | None, timeout: float = 30.0) -> Iterator[ArcadeClient]:
    client = ArcadeClient(api or default_api_url(), timeout=timeout)
    try:
        yield client
    except ApiError as exc:
        _fail(exc.message)
    finally:
        client.close()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _ago(ts: float | None) -> str:
    if not ts:
        return "never"
    delta = max(0.0, time.time() - ts)
    if delta < 60:
        return f"{delta:.0f}s ago"
    if delta < 3600:
        return f"{delta / 60:.0f}m ago"
    if delta < 86400:
        return f"{delta / 3600:.1f}h ago"
    return f"{delta / 86400:.1f}d ago"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _parse_selector(items: list[str] | None) -> dict[str, str]:
    selector: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"--selector {item!r} must look like key=value", 2)
        selector[key.strip()] = value.strip()
    return selector


def _parse_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{what} is not valid JSON: {exc.msg} at column {exc.colno}", 2)
    if not isinstance(value, dict):
        _fail(f"{what} must be a JSON object such as '{{\"interval\": 5}}'", 2)
    return value


# ---------------------------------------------------------------- server


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                      "help_option_names": []},
    add_help_option=False,
)
def server(ctx: typer.Context) -> None:
    """Run the Arcade server: REST API and gRPC for agents (see `arcade server --help`)."""
    from .__main__ import main as server_main

    code = server_main(list(ctx.args), prog="arcade server")
    if code:
        raise typer.Exit(code)


# ---------------------------------------------------------------- registry


@app.command()
def publish(
    wheels: Annotated[list[Path], typer.Argument(help="the plugin wheel and its dependency wheels",
                                                 show_default=False)],
    api: ApiOption = None,
    as_json: JsonOption = False,
    validate: Annotated[bool, typer.Option("--validate", help="dry run: check only")] = False,
    fetch_deps: Annotated[bool, typer.Option(
        "--fetch-deps", help="also publish the wheels of the plugin's dependencies, fetched "
        "with pip into the wheelhouse (reused when already there)")] = False,
    wheelhouse: Annotated[Path | None, typer.Option(
        help="dependency wheel cache for --fetch-deps [env ARCADE_WHEELHOUSE; default "
        "~/.cache/arcade/wheelhouse]", show_default=False)] = None,
) -> None:
    """Publish a plugin wheel (and the wheels of its dependencies)."""
    for path in wheels:
        if not path.is_file():
            _fail(f"{path} is not a file", 2)
    if fetch_deps:
        from .builtin import PluginBuildError, builtin_dependency_wheels
        from .wheelhouse import WheelhouseError

        try:
            extra = builtin_dependency_wheels(wheels, wheelhouse)
        except (PluginBuildError, WheelhouseError) as exc:
            _fail(f"--fetch-deps: {exc}")
        given = {p.name for p in wheels}
        wheels = [*wheels, *(p for p in extra if p.name not in given)]
    with _client(api) as client:
        total = client.upload_size(wheels)
        show = not as_json and err.is_terminal and total > 1024 * 1024
        if show:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TransferSpeedColumn,
            )

            with Progress(
                "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), console=err, transient=True,
            ) as progress:
                task = progress.add_task("uploading", total=total)
                status, body = client.publish(
                    wheels, progress=lambda n: progress.advance(task, n), validate_only=validate,
                )
        else:
            status, body = client.publish(wheels, validate_only=validate)
    if as_json:
        _print_json(body)
        return
    if validate:
        record = body.get("would_record", {})
        out.print(f"valid: {record.get('name')}@{record.get('version')} "
                  f"({len(record.get('wheels', []))} wheel(s))")
        if body.get("existing"):
            out.print(f"note: {body['existing']}")
        return
    verb = "published" if status == 201 else "already published (identical)"
    out.print(f"{verb}: {body['name']}@{body['version']}  sha256 {body['sha256'][:12]}…  "
              f"{len(body['wheels'])} wheel(s), {_size(sum(w['size'] for w in body['wheels']))}")
    if body.get("ignored"):
        out.print(f"not needed, not stored: {', '.join(body['ignored'])}")


@app.command()
def plugins(
    name: Annotated[str | None, typer.Argument(help="show one plugin", show_default=False)] = None,
    type: Annotated[str | None, typer.Option("--type", help="filter by manifest type")] = None,
    text: Annotated[str | None, typer.Option("--text", help="search name/summary")] = None,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """List published plugins, or show one with its versions."""
    with _client(api) as client:
        if name:
            plugin = client.plugin(name)
            latest = client.version(plugin["name"], plugin["latest"]) if plugin["latest"] else None
            if as_json:
                _print_json({**plugin, "latest_version": latest})
                return
            enabled = "enabled" if plugin["enabled"] else "DISABLED"
            out.print(f"[bold]{plugin['name']}[/]  ({enabled})"
                      f"  {plugin['description'] or plugin['summary']}")
            table = Table("version", "type", "size", "sha256", "published")
            for release in plugin["releases"]:
                table.add_row(release["version"], release["type"], _size(release["size"]),
                              release["sha256"][:12] + "…", _ago(release["created_at"]))
            out.print(table)
            if latest and latest.get("agents"):
                out.print("agents running the latest version: " + ", ".join(
                    f"{a['agent']} ({a['state'] or 'pending'})" for a in latest["agents"]))
            return
        items = client.plugins(type=type, text=text)
    if as_json:
        _print_json(items)
        return
    if not items:
        out.print("no plugins published yet: arcade publish WHEEL...")
        return
    table = Table("name", "latest", "versions", "type", "enabled", "description")
    for p in items:
        table.add_row(p["name"], p["latest"] or "-", str(len(p["versions"])), p["type"],
                      "yes" if p["enabled"] else "no", p["description"] or p["summary"])
    out.print(table)


@app.command()
def enable(name: str, api: ApiOption = None, as_json: JsonOption = False) -> None:
    """Allow new assignments of a plugin."""
    with _client(api) as client:
        result = client.set_enabled(name, True)
    _print_json(result) if as_json else out.print(f"{result['name']}: enabled")


@app.command()
def disable(name: str, api: ApiOption = None, as_json: JsonOption = False) -> None:
    """Refuse new assignments of a plugin (agents already running it keep it)."""
    with _client(api) as client:
        result = client.set_enabled(name, False)
    _print_json(result) if as_json else out.print(f"{result['name']}: disabled")


# ---------------------------------------------------------------- agents


@app.command()
def agents(
    label: Annotated[list[str] | None, typer.Option("--label", help="key=value filter")] = None,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """List agents with their status (online/offline) and revisions."""
    with _client(api) as client:
        items = client.agents(labels=_parse_selector(label))
    if as_json:
        _print_json(items)
        return
    if not items:
        out.print("no agents have connected yet: arcade agent --server HOST:PORT")
        return
    table = Table("id", "status", "hostname", "ip", "os/arch", "labels", "revision", "last seen")
    for a in items:
        status = "[green]online[/]" if a["online"] else "[red]offline[/]"
        labels = ",".join(f"{k}={v}" for k, v in sorted(a["labels"].items()))
        table.add_row(a["id"], status, a["hostname"], a["ip"], f"{a['os']}/{a['arch']}", labels,
                      f"{a['applied_revision']}/{a['desired_revision']}", _ago(a["last_seen"]))
    out.print(table)


@app.command()
def status(
    agent: Annotated[str, typer.Option("--agent", help="agent id")],
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an agent's plugins: desired and actual side by side."""
    with _client(api) as client:
        items = client.agent_plugins(agent)
    if as_json:
        _print_json(items)
        return
    table = Table("plugin", "desired", "actual", "state", "restarts", "error")
    for p in items:
        d, a = p["desired"], p["actual"]
        table.add_row(p["name"], d["version"] if d else "-", a["version"] if a else "-",
                      a["state"] if a else "pending", str(a["restarts"]) if a else "",
                      (a["error"] or "")[:80] if a else "")
    out.print(table)


def _install_report(status: int, body: dict[str, Any], wait: float | None) -> None:
    state = body.get("state")
    target = body.get("agent") or f"{body.get('matched', 0)} agent(s)"
    out.print(f"{body['plugin']}@{body['version']} assigned to {target}"
              + (f" (revision {body['revision']})" if "revision" in body else ""))
    if "states" in body:
        out.print(f"running: {body.get('running', 0)}, failed: {body.get('failed', 0)}, "
                  f"pending: {body['matched'] - body.get('running', 0) - body.get('failed', 0)}")
        if body.get("failed"):
            for agent_id, outcome in sorted(body["states"].items()):
                if outcome and outcome["state"] == "failed":
                    err.print(f"{agent_id}: failed: {outcome['error']}")
            raise typer.Exit(1)
    elif wait and status == 200 and state:
        if state["state"] == "failed":
            _fail(f"{body['plugin']}@{body['version']} failed on {body['agent']}: "
                  f"{state['error'] or 'no error text'}")
        out.print(f"{body['agent']}: {state['state']}")
    if wait and status == 202:
        _fail(f"timed out after {wait:g}s waiting for the agent(s) to report running or failed")


@app.command()
def install(
    spec: Annotated[str, typer.Argument(help="NAME@VERSION, NAME@RANGE or NAME")],
    agent: Annotated[str | None, typer.Option("--agent", help="agent id")] = None,
    selector: Annotated[list[str] | None, typer.Option(
        "--selector", help="key=value label selector (repeat to AND; 'all' alone = every agent)"
    )] = None,
    config: Annotated[str | None, typer.Option("--config", help="config as a JSON object")
                      ] = None,
    isolation: Annotated[str | None, typer.Option(
        "--isolation", help="inline or process [default: the plugin manifest's]")] = None,
    wait: Annotated[float | None, typer.Option(
        "--wait", help="seconds to wait for running/failed")] = None,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Install a plugin version on one agent or on every agent matching a selector."""
    if (agent is None) == (selector is None):
        _fail("give exactly one of --agent ID or --selector k=v", 2)
    if isolation is not None and isolation not in ("inline", "process"):
        _fail("--isolation must be 'inline' or 'process'", 2)
    cfg = _parse_json_object(config, "--config") if config is not None else None
    with _client(api) as client:
        if agent is not None:
            status, body = client.install(agent, spec, config=cfg, isolation=isolation,
                                          wait=wait)
        else:
            sel = {} if selector == ["all"] else _parse_selector(selector)
            status, body = client.install_selector(sel, spec, config=cfg, isolation=isolation,
                                                   wait=wait)
    if as_json:
        _print_json(body)
        failed = (body.get("state") or {}).get("state") == "failed" or body.get("failed")
        if failed or (wait and status == 202):
            raise typer.Exit(1)
        return
    _install_report(status, body, wait)


@app.command()
def uninstall(
    name: Annotated[str, typer.Argument(help="plugin name")],
    agent: Annotated[str | None, typer.Option("--agent", help="agent id")] = None,
    selector: Annotated[list[str] | None, typer.Option("--selector", help="key=value")] = None,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove a plugin from an agent's desired state (or from every matching agent)."""
    if (agent is None) == (selector is None):
        _fail("give exactly one of --agent ID or --selector k=v", 2)
    with _client(api) as client:
        if agent is not None:
            body = client.uninstall(agent, name)
        else:
            body = client.uninstall_selector(
                {} if selector == ["all"] else _parse_selector(selector), name
            )
    if as_json:
        _print_json(body)
    elif agent is not None:
        out.print(f"{body['plugin']} removed from {agent} (revision {body['revision']})")
    else:
        out.print(f"{body['plugin']} removed from {body['matched']} agent(s)")


@app.command("config")
def config_command(
    name: Annotated[str, typer.Argument(help="plugin name")],
    config: Annotated[str, typer.Argument(help="the new config, a JSON object")],
    agent: Annotated[str, typer.Option("--agent", help="agent id")],
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace the config of a plugin assigned to an agent (validated against its schema)."""
    cfg = _parse_json_object(config, "the config")
    with _client(api) as client:
        body = client.set_config(agent, name, cfg)
    if as_json:
        _print_json(body)
    else:
        out.print(f"{body['plugin']} on {agent}: config {json.dumps(body['config'])} "
                  f"(revision {body['revision']})")


@app.command()
def metrics(
    agent: Annotated[str, typer.Option("--agent", help="agent id")],
    name: Annotated[str | None, typer.Option("--name", help="metric name or prefix*")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an agent's latest stored metrics."""
    with _client(api) as client:
        items = client.metrics(agent, name=name, limit=limit)
    if as_json:
        _print_json(items)
        return
    table = Table("time", "plugin", "name", "value", "unit", "labels")
    for m in items:
        table.add_row(time.strftime("%H:%M:%S", time.localtime(m["timestamp"])), m["plugin"],
                      m["name"], f"{m['value']:.4g}", m["unit"],
                      ",".join(f"{k}={v}" for k, v in sorted(m["labels"].items())))
    out.print(table)


# ---------------------------------------------------------------- jobs

_STAGES = ("before", "after", "on_success", "on_failure", "notify")
#: Exit codes of ``arcade run`` for jobs that ended without an exit code of their own.
EXIT_FAILED = 1
EXIT_TIMED_OUT = 124
EXIT_CANCELLED = 130
_FINAL = ("succeeded", "failed", "cancelled", "timed_out")


class _RunCommand(TyperCommand):
    """``arcade run``, whose ``--config-for`` takes two values (``NAME JSON``), which typer's
    options cannot express: they are joined into one ``NAME=JSON`` value before parsing
    (``--config-for NAME=JSON`` works as well)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        joined: list[str] = []
        rest = list(args)
        while rest:
            token = rest.pop(0)
            if token == "--":
                joined.append(token)
                joined.extend(rest)
                break
            if token == "--config-for" and len(rest) >= 2 and "=" not in rest[0]:
                name, value = rest.pop(0), rest.pop(0)
                joined.extend([token, f"{name}={value}"])
            else:
                joined.append(token)
        result: list[str] = super().parse_args(ctx, joined)
        return result


def _parse_plugin_option(text: str) -> dict[str, Any]:
    """``name@spec:stage[:order]`` → a job plugin entry."""
    usage = (f"--plugin {text!r} must look like NAME@SPEC:STAGE[:ORDER], e.g. "
             "arcade-workspace@1.0.0:before or arcade-notify-webhook:notify:2")
    head, sep, last = text.rpartition(":")
    if not sep:
        _fail(usage, 2)
    order = 0
    if last.lstrip("-").isdigit():
        order = int(last)
        head, sep, last = head.rpartition(":")
        if not sep:
            _fail(usage, 2)
    if last not in _STAGES:
        _fail(f"--plugin {text!r}: stage {last!r} is not one of {', '.join(_STAGES)}", 2)
    if not head.strip():
        _fail(usage, 2)
    return {"plugin": head.strip(), "stage": last, "order": order}


def _spec_name(spec: str) -> str:
    from arcade_core import normalize_name

    name = spec.split("@", 1)[0].strip()
    try:
        return normalize_name(name)
    except ValueError:
        return name


def _parse_env_items(items: list[str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--env {item!r} must look like NAME=VALUE", 2)
        env[key] = value
    return env


def _job_exit_code(job: dict[str, Any]) -> int:
    """The exit code ``arcade run`` ends with for a finished job."""
    status = job["status"]
    if status == "succeeded":
        return 0
    code = job.get("exit_code")
    if status == "failed" and isinstance(code, int) and code > 0:
        return min(code, 255)
    if status == "timed_out":
        return EXIT_TIMED_OUT
    if status == "cancelled":
        return EXIT_CANCELLED
    return EXIT_FAILED


def _duration(job: dict[str, Any]) -> str:
    seconds = job.get("duration")
    return "-" if seconds is None else f"{seconds:.1f}s"


def _job_outcome(job: dict[str, Any]) -> str:
    text = f"job {job['id']} {job['status']}"
    if job.get("exit_code") is not None:
        text += f" (exit code {job['exit_code']})"
    if job.get("duration") is not None:
        text += f" in {job['duration']:.1f}s"
    if job.get("error") and job["status"] != "succeeded":
        text += f": {job['error']}"
    return text


class _OutputFollower:
    """Prints what is new in a job's output tail, using the total size to place it."""

    def __init__(self) -> None:
        self.printed = 0  # bytes of the job's output already printed

    def update(self, job: dict[str, Any]) -> None:
        size = int(job.get("output_size") or 0)
        if size <= self.printed:
            return
        tail = (job.get("output_tail") or "").encode("utf-8")
        start = size - len(tail)
        if self.printed < start:
            err.print(f"[dim]... {start - self.printed} bytes of output not shown ...[/]")
            chunk = tail
        else:
            chunk = tail[self.printed - start:]
        sys.stdout.write(chunk.decode("utf-8", "replace"))
        sys.stdout.flush()
        self.printed = size


def _record_line(record: dict[str, Any]) -> str:
    line = f"  {record['plugin']}@{record['version']} ({record['stage']}"
    line += f", order {record['order']})" if record["order"] else ")"
    line += f": {record['status']}"
    if record.get("error"):
        line += f": {record['error']}"
    return line


def _follow(client: ArcadeClient, job: dict[str, Any], interval: float, *,
            live: bool) -> dict[str, Any]:
    """Poll the job until it ends, printing status, plugin records and output if ``live``;
    the first Ctrl+C cancels the job, a second one stops following."""
    output = _OutputFollower()
    status = ""
    records: dict[int, str] = {}
    cancelled = False
    while True:
        try:
            if live:
                if job["status"] != status:
                    status = job["status"]
                    if status not in _FINAL:  # the end is said once, by the caller
                        err.print(f"[bold]job {job['id']}: {status} on {job['agent']}[/]")
                for record in job.get("plugins", []):
                    if records.get(record["index"]) != record["status"] \
                            and record["status"] != "pending":
                        records[record["index"]] = record["status"]
                        err.print(_record_line(record), markup=False)
                output.update(job)
            if job["status"] in _FINAL:
                return job
            time.sleep(interval)
            job = client.job(job["id"])
        except KeyboardInterrupt:
            if cancelled:
                err.print(f"stopped following job {job['id']} (it may still be running)")
                raise typer.Exit(EXIT_CANCELLED) from None
            cancelled = True
            err.print(f"cancelling job {job['id']} (Ctrl+C again to stop following)")
            try:
                job = client.cancel_job(job["id"])
            except ApiError as exc:  # it ended meanwhile (409)
                err.print(f"could not cancel: {exc.message}", markup=False)
                job = client.job(job["id"])


@app.command(
    cls=_RunCommand,
    context_settings={"allow_interspersed_args": False},
    epilog="Exit code: the job's own exit code, or 124 when it timed out, 130 when it was "
    "cancelled, 1 when it failed without one (e.g. a before plugin failed).",
)
def run(
    command: Annotated[list[str] | None, typer.Argument(
        help="the command, after --: one argument is a shell command line; several are "
        "quoted into one command", show_default=False)] = None,
    agent: Annotated[str, typer.Option("--agent", help="agent id", show_default=False)] = "",
    plugin: Annotated[list[str] | None, typer.Option(
        "--plugin", help="NAME@SPEC:STAGE[:ORDER] (stage: before, after, on_success, "
        "on_failure, notify); repeat for more entries", show_default=False)] = None,
    config_for: Annotated[list[str] | None, typer.Option(
        "--config-for", metavar="NAME JSON",
        help="config (a JSON object) of every --plugin entry of plugin NAME",
        show_default=False)] = None,
    isolation_for: Annotated[list[str] | None, typer.Option(
        "--process", metavar="NAME", help="run plugin NAME's entries in their own process",
        show_default=False)] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", help="seconds the commands may run [default: the server's]",
        show_default=False)] = None,
    env: Annotated[list[str] | None, typer.Option(
        "--env", help="NAME=VALUE for the commands; repeat", show_default=False)] = None,
    extra: Annotated[list[str] | None, typer.Option(
        "-c", "--command", help="a shell command line run before COMMAND; repeat",
        show_default=False)] = None,
    follow: Annotated[bool, typer.Option(
        "--follow/--detach", help="follow the job to its end, or print its id and return")
    ] = True,
    interval: Annotated[float, typer.Option(help="seconds between polls")] = 0.3,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run commands on an agent as a job, with plugins around them; follow it live."""
    import shlex

    if not agent:
        _fail("--agent ID is required: the agent the job runs on", 2)
    commands = list(extra or [])
    if command:
        commands.append(command[0] if len(command) == 1 else shlex.join(command))
    if not commands:
        _fail("give the command after --, e.g. arcade run --agent ID -- make test", 2)
    if interval <= 0:
        _fail("--interval must be positive", 2)
    entries = [_parse_plugin_option(text) for text in plugin or []]
    names = {_spec_name(e["plugin"]) for e in entries}
    for item in config_for or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            _fail(f"--config-for takes a plugin name and a JSON object: --config-for NAME "
                  f"'{{...}}', not {item!r}", 2)
        wanted = _spec_name(name)
        if wanted not in names:
            _fail(f"--config-for {name}: no --plugin entry uses {wanted!r}", 2)
        config = _parse_json_object(text, f"--config-for {name}")
        for entry in entries:
            if _spec_name(entry["plugin"]) == wanted:
                entry["config"] = config
    for name in isolation_for or []:
        wanted = _spec_name(name)
        if wanted not in names:
            _fail(f"--process {name}: no --plugin entry uses {wanted!r}", 2)
        for entry in entries:
            if _spec_name(entry["plugin"]) == wanted:
                entry["isolation"] = "process"
    with _client(api) as client:
        job = client.create_job(agent, commands, env=_parse_env_items(env), timeout=timeout,
                                plugins=entries)
        if not follow:
            _print_json(job) if as_json else out.print(job["id"])
            return
        if not as_json and not job.get("connected"):
            err.print(f"agent {agent} is not connected: the job waits until it is")
        job = _follow(client, job, interval, live=not as_json)
    if as_json:
        _print_json(job)
    else:
        style = "green" if job["status"] == "succeeded" else "red"
        err.print(Text(_job_outcome(job), style=style))
    raise typer.Exit(_job_exit_code(job))


@app.command("jobs")
def jobs_command(
    agent: Annotated[str | None, typer.Option("--agent", help="only this agent's jobs")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="queued, running, succeeded, failed, cancelled or timed_out")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    with _client(api) as client:
        items = client.jobs(agent=agent, status=status, limit=limit)
    if as_json:
        _print_json(items)
        return
    if not items:
        out.print("no jobs yet: arcade run --agent ID -- COMMAND")
        return
    table = Table()
    table.add_column("id", no_wrap=True, min_width=16)
    for column in ("agent", "status", "exit", "created", "duration", "command"):
        table.add_column(column)
    # The other columns are short: the command gets what is left of the line.
    room = max(8, out.width - 68 - max(len(j["agent"]) for j in items))
    for j in items:
        command = j["commands"][0] if j["commands"] else ""
        if len(j["commands"]) > 1:
            command = f"(+{len(j['commands']) - 1}) {command}"
        if len(command) > room:
            command = command[: room - 1] + "…"
        table.add_row(j["id"], j["agent"], j["status"],
                      "" if j["exit_code"] is None else str(j["exit_code"]),
                      _ago(j["created_at"]), _duration(j), Text(command))
    out.print(table)


@app.command("job")
def job_command(
    job_id: Annotated[str, typer.Argument(help="the job's id")],
    cancel: Annotated[bool, typer.Option("--cancel", help="cancel the job")] = False,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one job: status, timing, plugin records and the end of its output."""
    with _client(api) as client:
        job = client.cancel_job(job_id) if cancel else client.job(job_id)
        if cancel and "plugins" not in job:
            job = client.job(job_id)
    if as_json:
        _print_json(job)
        return
    out.print(f"[bold]job {job['id']}[/] on {job['agent']}: {job['status']}"
              + (f" (exit code {job['exit_code']})" if job["exit_code"] is not None else ""),
              highlight=False)
    out.print(f"created {_ago(job['created_at'])}, duration {_duration(job)}, "
              f"timeout {job['timeout']:g}s")
    if job.get("cancel_requested_at"):
        out.print("cancel requested")
    if job["error"]:
        out.print(f"error: {job['error']}", markup=False)
    for number, command in enumerate(job["commands"], 1):
        out.print(f"command {number}: {command}", markup=False)
    if job["plugins"]:
        table = Table("#", "plugin", "stage", "order", "status", "time", "result / error")
        for p in job["plugins"]:
            took = ("" if not p["started_at"] or not p["completed_at"]
                    else f"{p['completed_at'] - p['started_at']:.2f}s")
            detail = p["error"] or ("" if p["result"] is None else json.dumps(p["result"]))
            table.add_row(str(p["index"]), f"{p['plugin']}@{p['version']}", p["stage"],
                          str(p["order"]), p["status"], took, Text(detail[:200]))
        out.print(table)
    if job["output_tail"]:
        shown = len(job["output_tail"].encode("utf-8"))
        note = "" if shown >= job["output_size"] else f" (last {shown} of {job['output_size']} " \
            "bytes)"
        out.print(f"[bold]output{note}:[/]")
        sys.stdout.write(job["output_tail"] if job["output_tail"].endswith("\n")
                         else job["output_tail"] + "\n")



# ---------------------------------------------------------------- agent (provided by arcade_agent)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                      "help_option_names": []},
    add_help_option=False,
)
def agent(ctx: typer.Context) -> None:
    """Run an Arcade agent (see `arcade agent --help`)."""
    try:
        from arcade_agent.__main__ import main as agent_main  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        _fail(f"the Arcade agent is not available in this installation ({exc})")
    code = agent_main(list(ctx.args), prog="arcade agent")
    if code:
        raise typer.Exit(code)


# ---------------------------------------------------------------- quickstart (see quickstart.py)


@app.command()
def quickstart(
    home: Annotated[Path | None, typer.Option(
        help="where the quick start keeps its server, agent and wheels "
        "(default ./.arcade/quickstart)", show_default=False)] = None,
    seconds: Annotated[float | None, typer.Option(
        help="stop after this many seconds of metrics (default: until Ctrl+C)",
        show_default=False)] = None,
    http_port: Annotated[int | None, typer.Option(
        help="REST port (default 8080, or any free one if taken; 0 = any)",
        show_default=False)] = None,
    grpc_port: Annotated[int | None, typer.Option(
        help="gRPC port (default 9090, or any free one if taken; 0 = any)",
        show_default=False)] = None,
    interval: Annotated[float, typer.Option(help="collect and refresh interval, seconds")] = 2.0,
) -> None:
    """Run everything locally: server, built-in plugins, an agent, live metrics."""
    from .quickstart import QuickstartError, run_quickstart

    if (seconds is not None and seconds <= 0) or interval <= 0:
        _fail("--seconds and --interval must be positive", 2)
    try:
        run_quickstart(home=home, seconds=seconds, http_port=http_port, grpc_port=grpc_port,
                       interval=interval, console=out)
    except QuickstartError as exc:
        _fail(str(exc))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
