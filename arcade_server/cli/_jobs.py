"""The job commands: ``arcade run`` (follows a job live), ``arcade jobs`` and ``arcade job``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from arcade_core.states import FINAL_JOB_STATUSES, Isolation, JobStatus, RecordStatus, Stage

from ._app import Command, client, parse_json_object
from ._output import Cell, CommandError, Table, ago, fail, print_json, styled, width

if TYPE_CHECKING:
    from ..client import ArcadeClient

__all__ = ["EXIT_CANCELLED", "EXIT_FAILED", "EXIT_TIMED_OUT", "job", "jobs", "run"]

_STAGES = tuple(Stage)
#: Exit codes of ``arcade run`` for jobs that ended without an exit code of their own.
EXIT_FAILED = 1
EXIT_TIMED_OUT = 124
EXIT_CANCELLED = 130
_FINAL = tuple(FINAL_JOB_STATUSES)


def _parse_plugin_option(text: str) -> dict[str, Any]:
    """``name@spec:stage[:order]`` → a job plugin entry."""
    usage = (f"--plugin {text!r} must look like NAME@SPEC:STAGE[:ORDER], e.g. "
             "arcade-workspace@1.0.0:before or arcade-notify-webhook:notify:2")
    head, sep, last = text.rpartition(":")
    if not sep:
        fail(usage, 2)
    order = 0
    if last.lstrip("-").isdigit():
        order = int(last)
        head, sep, last = head.rpartition(":")
        if not sep:
            fail(usage, 2)
    if last not in _STAGES:
        fail(f"--plugin {text!r}: stage {last!r} is not one of {', '.join(_STAGES)}", 2)
    if not head.strip():
        fail(usage, 2)
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
            fail(f"--env {item!r} must look like NAME=VALUE", 2)
        env[key] = value
    return env


def _job_exit_code(job: dict[str, Any]) -> int:
    """The exit code ``arcade run`` ends with for a finished job."""
    status = job["status"]
    if status == JobStatus.SUCCEEDED:
        return 0
    code = job.get("exit_code")
    if status == JobStatus.FAILED and isinstance(code, int) and code > 0:
        return min(code, 255)
    if status == JobStatus.TIMED_OUT:
        return EXIT_TIMED_OUT
    if status == JobStatus.CANCELLED:
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
    if job.get("error") and job["status"] != JobStatus.SUCCEEDED:
        text += f": {job['error']}"
    return text


def _say(text: str, style: str = "") -> None:
    """A progress line on stderr (the job's own output goes to stdout)."""
    sys.stdout.flush()
    sys.stderr.write((styled(text, style, sys.stderr) if style else text) + "\n")
    sys.stderr.flush()


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
            _say(f"... {start - self.printed} bytes of output not shown ...", "dim")
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


def _follow(api: ArcadeClient, job: dict[str, Any], interval: float, *,
            live: bool) -> dict[str, Any]:
    """Poll the job until it ends, printing status, plugin records and output if ``live``;
    the first Ctrl+C cancels the job, a second one stops following."""
    from ..client import ApiError

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
                        _say(f"job {job['id']}: {status} on {job['agent']}", "bold")
                for record in job.get("plugins", []):
                    if records.get(record["index"]) != record["status"] \
                            and record["status"] != RecordStatus.PENDING:
                        records[record["index"]] = record["status"]
                        _say(_record_line(record))
                output.update(job)
            if job["status"] in _FINAL:
                return job
            time.sleep(interval)
            job = api.job(job["id"])
        except KeyboardInterrupt:
            if cancelled:
                _say(f"stopped following job {job['id']} (it may still be running)")
                raise CommandError("", EXIT_CANCELLED) from None
            cancelled = True
            _say(f"cancelling job {job['id']} (Ctrl+C again to stop following)")
            try:
                job = api.cancel_job(job["id"])
            except ApiError as exc:  # it ended meanwhile (409)
                _say(f"could not cancel: {exc.message}")
                job = api.job(job["id"])


def _join_config_for(argv: list[str]) -> list[str]:
    """``--config-for NAME JSON`` (two values) → ``--config-for NAME=JSON``, before ``--``."""
    joined: list[str] = []
    rest = list(argv)
    while rest:
        token = rest.pop(0)
        if token == "--":
            return [*joined, token, *rest]
        if token == "--config-for" and len(rest) >= 2 and "=" not in rest[0]:
            joined += [token, f"{rest.pop(0)}={rest.pop(0)}"]
        else:
            joined.append(token)
    return joined


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="the command, after --: one argument is a shell command line; "
                   "several are quoted into one command")
    p.add_argument("--agent", default="", metavar="ID", help="agent id")
    p.add_argument("--plugin", action="append", metavar="NAME@SPEC:STAGE[:ORDER]",
                   help="stage: before, after, on_success, on_failure, notify; repeat for "
                   "more entries")
    p.add_argument("--config-for", action="append", metavar="NAME JSON",
                   help="config (a JSON object) of every --plugin entry of plugin NAME")
    p.add_argument("--process", action="append", dest="isolation_for", metavar="NAME",
                   help="run plugin NAME's entries in their own process")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="seconds the commands may run [default: the server's]")
    p.add_argument("--env", action="append", metavar="NAME=VALUE",
                   help="NAME=VALUE for the commands; repeat")
    p.add_argument("-c", "--command", dest="extra", action="append", metavar="LINE",
                   help="a shell command line run before COMMAND; repeat")
    p.add_argument("--follow", dest="follow", action="store_true", default=True,
                   help="follow the job to its end (the default)")
    p.add_argument("--detach", dest="follow", action="store_false",
                   help="print the job's id and return")
    p.add_argument("--interval", type=float, default=0.3, metavar="SECONDS",
                   help="seconds between polls")


def _entries(args: argparse.Namespace) -> list[dict[str, Any]]:
    entries = [_parse_plugin_option(text) for text in args.plugin or []]
    names = {_spec_name(e["plugin"]) for e in entries}
    for item in args.config_for or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            fail(f"--config-for takes a plugin name and a JSON object: --config-for NAME "
                 f"'{{...}}', not {item!r}", 2)
        wanted = _spec_name(name)
        if wanted not in names:
            fail(f"--config-for {name}: no --plugin entry uses {wanted!r}", 2)
        config = parse_json_object(text, f"--config-for {name}")
        for entry in entries:
            if _spec_name(entry["plugin"]) == wanted:
                entry["config"] = config
    for name in args.isolation_for or []:
        wanted = _spec_name(name)
        if wanted not in names:
            fail(f"--process {name}: no --plugin entry uses {wanted!r}", 2)
        for entry in entries:
            if _spec_name(entry["plugin"]) == wanted:
                entry["isolation"] = Isolation.PROCESS
    return entries


def _run(args: argparse.Namespace) -> int:
    import shlex

    if not args.agent:
        fail("--agent ID is required: the agent the job runs on", 2)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    commands = list(args.extra or [])
    if command:
        commands.append(command[0] if len(command) == 1 else shlex.join(command))
    if not commands:
        fail("give the command after --, e.g. arcade run --agent ID -- make test", 2)
    if args.interval <= 0:
        fail("--interval must be positive", 2)
    entries = _entries(args)
    with client(args) as api:
        job = api.create_job(args.agent, commands, env=_parse_env_items(args.env),
                             timeout=args.timeout, plugins=entries)
        if not args.follow:
            print_json(job) if args.as_json else print(job["id"])
            return 0
        if not args.as_json and not job.get("connected"):
            _say(f"agent {args.agent} is not connected: the job waits until it is")
        job = _follow(api, job, args.interval, live=not args.as_json)
    if args.as_json:
        print_json(job)
    else:
        _say(_job_outcome(job), "green" if job["status"] == JobStatus.SUCCEEDED else "red")
    return _job_exit_code(job)


class _Run(Command):
    def __call__(self, argv: list[str] | None = None, *, prog: str | None = None) -> int:
        return super().__call__(_join_config_for(sys.argv[1:] if argv is None else argv),
                                prog=prog)


run = _Run("run", "Run commands on an agent as a job, with plugins around them; follow it "
           "live.", _run_args, _run,
           epilog="Exit code: the job's own exit code, or 124 when it timed out, 130 when it "
           "was cancelled, 1 when it failed without one (e.g. a before plugin failed).")


def _jobs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", metavar="ID", help="only this agent's jobs")
    p.add_argument("--status", help="queued, running, succeeded, failed, cancelled or timed_out")
    p.add_argument("--limit", type=int, default=50)


def _jobs(args: argparse.Namespace) -> None:
    with client(args) as api:
        items = api.jobs(agent=args.agent, status=args.status, limit=args.limit)
    if args.as_json:
        print_json(items)
        return
    if not items:
        print("no jobs match: drop --agent/--status to see every job"
              if args.agent or args.status else
              "no jobs yet: run one with `arcade run --agent ID -- COMMAND`")
        return
    table = Table()
    table.add_column("id", no_wrap=True, min_width=16)
    for column in ("agent", "status", "exit", "created", "duration", "command"):
        table.add_column(column)
    # The other columns are short: the command gets what is left of the line.
    room = max(8, width() - 68 - max(len(j["agent"]) for j in items))
    for j in items:
        command = j["commands"][0] if j["commands"] else ""
        if len(j["commands"]) > 1:
            command = f"(+{len(j['commands']) - 1}) {command}"
        if len(command) > room:
            command = command[: room - 1] + "…"
        table.add_row(j["id"], j["agent"], j["status"],
                      "" if j["exit_code"] is None else str(j["exit_code"]),
                      ago(j["created_at"]), _duration(j), command)
    table.print()


jobs = Command("jobs", "List jobs, newest first.", _jobs_args, _jobs)


def _job_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("job_id", metavar="JOB_ID", help="the job's id")
    p.add_argument("--cancel", action="store_true", help="cancel the job")


def _job(args: argparse.Namespace) -> None:
    with client(args) as api:
        job = api.cancel_job(args.job_id) if args.cancel else api.job(args.job_id)
        if args.cancel and "plugins" not in job:
            job = api.job(args.job_id)
    if args.as_json:
        print_json(job)
        return
    print(f"{styled('job ' + job['id'], 'bold')} on {job['agent']}: {job['status']}"
          + (f" (exit code {job['exit_code']})" if job["exit_code"] is not None else ""))
    print(f"created {ago(job['created_at'])}, duration {_duration(job)}, "
          f"timeout {job['timeout']:g}s")
    if job.get("cancel_requested_at"):
        print("cancel requested")
    if job["error"]:
        print(f"error: {job['error']}")
    for number, command in enumerate(job["commands"], 1):
        print(f"command {number}: {command}")
    if job["plugins"]:
        table = Table.of("#", "plugin", "stage", "order", "status", "time", "result / error")
        for p in job["plugins"]:
            took = ("" if not p["started_at"] or not p["completed_at"]
                    else f"{p['completed_at'] - p['started_at']:.2f}s")
            detail = p["error"] or ("" if p["result"] is None else json.dumps(p["result"]))
            table.add_row(str(p["index"]), f"{p['plugin']}@{p['version']}", p["stage"],
                          str(p["order"]), p["status"], took, Cell(detail[:200]))
        table.print()
    if job["output_tail"]:
        shown = len(job["output_tail"].encode("utf-8"))
        note = "" if shown >= job["output_size"] else f" (last {shown} of {job['output_size']} " \
            "bytes)"
        print(styled(f"output{note}:", "bold"))
        sys.stdout.write(job["output_tail"] if job["output_tail"].endswith("\n")
                         else job["output_tail"] + "\n")


job = Command("job", "Show one job: status, timing, plugin records and the end of its output.",
              _job_args, _job)
