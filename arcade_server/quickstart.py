"""``arcade quickstart``: the whole of Arcade on one machine, in one command.

It does, in order, and says so as it goes:

1. starts a server (SQLite and a local blob store under ``HOME/server``) in a background
   thread, and prints where the REST API, its docs and the gRPC port are, where the admin
   API token is, and the ``export`` lines that let the ``arcade`` commands use it;
2. builds the built-in plugins into real wheels and gathers their dependency wheels
   (:mod:`arcade_core.builtin`; psutil is fetched with pip once, then cached);
3. publishes them through the REST API, as an operator would, signed with the quick start's
   own key (``HOME/keys/quickstart.key``, made on the first run and kept);
4. starts a local agent, ``python -m arcade_agent`` in a child process, as on any machine of
   a fleet (its log: ``HOME/agent.log``; its config ``HOME/agent.toml`` trusts the quick
   start's public key, so it installs only what that key signed), and waits until the
   server reports it connected;
5. installs ``arcade-cpu@1.0.0``, ``arcade-memory@1.0.0`` and ``arcade-loadavg@1.0.0`` (an
   exec plugin: a shell script) on it through the REST API and
   waits until the agent reports them ``running``;
6. shows the agent's metrics as the server stored them (read back from
   ``GET /api/v1/agents/{id}/metrics``): a table redrawn in place on a terminal, a plain table
   per refresh otherwise, until Ctrl+C or for ``--seconds``.

Nothing here is a shortcut: the data path is the product's (REST → desired state → gRPC
stream → download with sha256 check → plugin environment → collect → metric batches → SQL).
It needs the ``server`` and ``agent`` extras; the agent runs in its own process, so the server
package never imports the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from arcade_core.commands import parser as make_parser
from arcade_core.commands import require
from arcade_core.states import PluginState

from ._quickstart_keys import QuickstartKeyError, agent_config, sign_wheels, signing_key
from ._quickstart_screen import Screen, Steps, say_up
from .cli._output import Table, styled

if TYPE_CHECKING:
    from .client import ArcadeClient

__all__ = ["QUICKSTART_PLUGINS", "QuickstartError", "default_home", "main", "run_quickstart"]

# The server extra and the agent's (its child process): said before anything starts.
require("fastapi", "uvicorn", "sqlalchemy", "build", "grpc", "google.protobuf")

log = logging.getLogger("arcade.quickstart")

#: Two Python plugins (in-process) and an exec plugin (a POSIX shell script, its own process).
QUICKSTART_PLUGINS = ("arcade-cpu@1.0.0", "arcade-memory@1.0.0", "arcade-loadavg@1.0.0")
AGENT_ID = "quickstart"
DEFAULT_HTTP_PORT = 8080
DEFAULT_GRPC_PORT = 9090

# The metrics worth a line in the table, in this order; others follow alphabetically.
_FIRST = ("cpu.percent", "cpu.load1", "memory.percent", "memory.used", "memory.available",
          "swap.percent", "swap.used")


class QuickstartError(Exception):
    """A step of the quick start failed; the message says which and what to do."""


def default_home() -> Path:
    """``./.arcade/quickstart``: kept between runs, so a second run starts warm."""
    return Path.cwd() / ".arcade" / "quickstart"


def main(argv: list[str] | None = None, *, prog: str = "arcade quickstart") -> int:
    """``arcade quickstart``: parse the options, run, return the exit status."""
    parser = make_parser(prog, "Run everything locally: server, built-in plugins, an agent, "
                         "live metrics.")
    parser.add_argument("--home", type=Path, help="where the quick start keeps its server, "
                        "agent and wheels (default ./.arcade/quickstart)")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds of "
                        "metrics (default: until Ctrl+C)")
    parser.add_argument("--http-port", type=int, help="REST port (default 8080, or any free "
                        "one if taken; 0 = any)")
    parser.add_argument("--grpc-port", type=int, help="gRPC port (default 9090, or any free "
                        "one if taken; 0 = any)")
    parser.add_argument("--interval", type=float, default=2.0,
                        help="collect and refresh interval, seconds")
    args = parser.parse_args(argv)
    if (args.seconds is not None and args.seconds <= 0) or args.interval <= 0:
        return _error("--seconds and --interval must be positive", 2)
    try:
        run_quickstart(home=args.home, seconds=args.seconds, http_port=args.http_port,
                       grpc_port=args.grpc_port, interval=args.interval)
    except QuickstartError as exc:
        return _error(str(exc), 1)
    return 0


def _error(message: str, code: int) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"{styled('error:', 'bold red', sys.stderr)} {message}\n")
    return code


def run_quickstart(
    *,
    home: Path | None = None,
    seconds: float | None = None,
    http_port: int | None = None,
    grpc_port: int | None = None,
    interval: float = 2.0,
    out: TextIO | None = None,
) -> None:
    """Run the quick start (blocking) until Ctrl+C/SIGTERM, or for ``seconds``.

    ``http_port``/``grpc_port`` ``None`` try 8080/9090 and fall back to any free port when
    those are taken; 0 means any free port. Raises :class:`QuickstartError`.
    """
    screen = Screen(sys.stdout if out is None else out)
    asyncio.run(_main(home or default_home(), seconds, http_port, grpc_port, interval, screen))


async def _main(home: Path, seconds: float | None, http_port: int | None,
                grpc_port: int | None, interval: float, screen: Screen) -> None:
    from arcade_core.builtin import (
        PluginBuildError,
        build_builtin_wheels,
        builtin_dependency_wheels,
    )
    from arcade_core.wheelhouse import WheelhouseError

    from .client import ApiError, ArcadeClient

    home = home.expanduser().absolute()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    step = Steps(screen)
    bold = screen.bold

    with step("Starting the Arcade server (SQLite + local blob store)"):
        server = await asyncio.to_thread(_start_server, home / "server", http_port, grpc_port)
    try:
        screen.say(f"  REST API  {bold(server.http_url + '/api/v1')}   "
                   f"docs: {bold(server.http_url + '/docs')}")
        screen.say(f"  gRPC      {bold(server.grpc_target)}   data: {home / 'server'}")
        token_file = server.settings.admin_token_file
        if not token_file.is_file():
            raise QuickstartError(f"{token_file} (the admin API token) is missing; remove "
                                  f"{home / 'server'} to start afresh")
        # A local, loopback-only demo prints its admin token, as a development server does
        # (Vault's dev mode prints its root token); a real server only says where it is.
        screen.say(f"  admin token {bold(server.admin_token)} (also in {token_file}); for the "
                   f"CLI:\n    {bold(f'export ARCADE_API={server.http_url}')}\n"
                   f"    {bold(f'export ARCADE_TOKEN=$(cat {token_file})')}")
        client = ArcadeClient(server.http_url, token=server.admin_token, timeout=60.0)
        try:
            with step("Building the built-in plugins into wheels"):
                wheels = await asyncio.to_thread(build_builtin_wheels, home / "wheels")
            screen.say("  " + ", ".join(sorted(p.name for p in wheels.values())))
            with step("Gathering their dependency wheels (pip download, cached)"):
                deps = {name: await asyncio.to_thread(builtin_dependency_wheels, [wheel])
                        for name, wheel in wheels.items()}
            screen.say("  " + (", ".join(sorted({p.name for d in deps.values() for p in d}))
                               or "none needed"))
            with step(f"Signing key {home / 'keys' / 'quickstart.key'}"):
                key, key_id = await asyncio.to_thread(signing_key, home / "keys")
            screen.say(f"  key id {key_id} (the agent trusts {home / 'keys' / 'quickstart.pub'})")
            with step("Publishing them signed, through the REST API (POST /api/v1/plugins)"):
                for name, wheel in sorted(wheels.items()):
                    paths, fields = await asyncio.to_thread(sign_wheels, key,
                                                          [wheel, *deps[name]])
                    status, body = await asyncio.to_thread(client.publish, paths,
                                                           fields=fields)
                    what = "published" if status == 201 else "already published"
                    screen.say(f"  {body.get('name', name)}@{body.get('version', '?')}: {what}")

            with step(f"Starting a local agent {AGENT_ID!r} (python -m arcade_agent, home "
                      f"{home / 'agent'})"):
                token = await asyncio.to_thread(_enrollment_token, server)
                agent = _start_agent(home, server.grpc_target, interval, token,
                                     home / "server" / "tls" / "ca.pem",
                                     home / "keys" / "quickstart.pub")
            try:
                await _wait_connected(client, agent, home / "agent.log", 30.0)
                for spec in QUICKSTART_PLUGINS:
                    with step(f"Installing {spec} on {AGENT_ID!r} "
                              f"(POST /api/v1/agents/{AGENT_ID}/plugins)"):
                        status, body = await asyncio.to_thread(
                            client.install, AGENT_ID, spec, wait=60
                        )
                        # 200: {"state": {"state": <PluginState>, "error": ...}, ...};
                        # 202 (the agent did not answer in time): the state so far.
                        outcome = body.get("state")
                        if not isinstance(outcome, dict):
                            outcome = body
                        state = outcome.get("state") or PluginState.PENDING
                        if state == PluginState.FAILED:
                            raise QuickstartError(f"{spec} failed on the agent: "
                                                  f"{outcome.get('error')}")
                        screen.say(f"  {spec}: {state} (HTTP {status})")
                say_up(screen, AGENT_ID, server, token_file)
                screen.say(
                    f"\n{bold('Live metrics')} from GET {server.http_url}/api/v1/agents/"
                    f"{AGENT_ID}/metrics (every {interval:g}s; "
                    + (f"for {seconds:g}s" if seconds else "Ctrl+C to stop") + ")"
                )
                await _show_metrics(client, screen, interval, seconds, stop)
            finally:
                with step("Stopping the agent"):
                    await asyncio.to_thread(_stop_agent, agent)
        except ApiError as exc:
            raise QuickstartError(f"the REST API refused a step: {exc.message}") from None
        except QuickstartKeyError as exc:
            raise QuickstartError(str(exc)) from None
        except (PluginBuildError, WheelhouseError) as exc:
            raise QuickstartError(
                f"{exc} (dependency wheels come from the package index once, then from the "
                "wheelhouse cache; set ARCADE_WHEELHOUSE to a directory holding them to run "
                "offline)"
            ) from None
        finally:
            client.close()
    finally:
        with step("Stopping the server"):
            await asyncio.to_thread(server.stop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    screen.say(
        f"\nDone. Next: run {bold('arcade server --grpc-host 0.0.0.0')}, "
        f"{bold('arcade enroll create')} for each machine, "
        f"{bold('arcade agent --server HOST:9090 --enroll-token TOKEN --ca-hash sha256:...')} "
        f"on it, then "
        f"{bold('arcade publish')} / {bold('arcade install')} (README: Running the parts yourself)."
    )


def _enrollment_token(server: Any) -> str:
    """A one-use enrollment token for the quick start's agent (made through the server's
    state: the quick start is the server's own process)."""
    from .services import enrollment

    created = server.call(server.state.db.run(
        enrollment.create_token, name="quickstart", max_uses=1, ttl=600.0))
    return str(created.token)


def _start_agent(home: Path, server: str, interval: float, token: str, ca_file: Path,
                 trusted_key: Path) -> subprocess.Popen[bytes]:
    """``python -m arcade_agent`` with short intervals, logging to ``HOME/agent.log``. On its
    first start it enrolls with ``token`` (in its environment, not on its command line),
    trusting ``ca_file``; later starts use the certificate in ``HOME/agent/tls``."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "agent.toml"
    config.write_text(agent_config(interval, trusted_key), encoding="utf-8")
    with open(home / "agent.log", "ab") as logfile:
        return subprocess.Popen(
            [sys.executable, "-m", "arcade_agent", "--server", server, "--home",
             str(home / "agent"), "--id", AGENT_ID, "--label", "quickstart=true",
             "--config", str(config), "--log-level", "warning", "--ca-file", str(ca_file)],
            stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
            env={**os.environ, "ARCADE_AGENT_ENROLL_TOKEN": token},
        )


async def _wait_connected(client: ArcadeClient, agent: subprocess.Popen[bytes], logfile: Path,
                          timeout: float) -> None:
    from .client import ApiError

    deadline = time.monotonic() + timeout
    while True:
        if agent.poll() is not None:
            tail = logfile.read_text("utf-8", "replace")[-2000:]
            raise QuickstartError(f"the agent exited with status {agent.returncode}:\n{tail}")
        with contextlib.suppress(ApiError):  # 404 until it has registered
            if (await asyncio.to_thread(client.agent, AGENT_ID)).get("connected"):
                return
        if time.monotonic() > deadline:
            raise QuickstartError(f"the agent did not connect within {timeout:g}s; its log: "
                                  f"{logfile}")
        await asyncio.sleep(0.1)


def _stop_agent(agent: subprocess.Popen[bytes]) -> None:
    if agent.poll() is None:
        agent.terminate()
    try:
        agent.wait(30)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()


def _start_server(home: Path, http_port: int | None, grpc_port: int | None) -> Any:
    from .runner import ServerThread
    from .settings import Settings

    def attempt(http: int, grpc: int) -> ServerThread:
        settings = Settings(home=home, http_port=http, grpc_port=grpc,
                            heartbeat_interval=5.0, offline_after=20.0, log_level="warning")
        return ServerThread(settings).start()

    try:
        return attempt(DEFAULT_HTTP_PORT if http_port is None else http_port,
                       DEFAULT_GRPC_PORT if grpc_port is None else grpc_port)
    except OSError as exc:
        if http_port is not None and grpc_port is not None:
            raise QuickstartError(f"cannot start the server: {exc}") from None
        log.info("default ports taken (%s); using free ones", exc)
        return attempt(http_port or 0, grpc_port or 0)


async def _show_metrics(client: ArcadeClient, screen: Screen, interval: float,
                        seconds: float | None, stop: asyncio.Event) -> None:
    deadline = time.monotonic() + seconds if seconds else None
    while not stop.is_set():
        rows = await asyncio.to_thread(client.metrics, AGENT_ID, limit=500)
        screen.redraw(_table(rows).render(stream=screen.out))
        remaining = deadline - time.monotonic() if deadline is not None else interval
        if remaining <= 0:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(interval, remaining))


def _table(rows: list[dict[str, Any]]) -> Table:
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        labels = ",".join(f"{k}={v}" for k, v in sorted(row["labels"].items()))
        latest[(row["plugin"], row["name"], labels)] = row
    order = {name: i for i, name in enumerate(_FIRST)}
    keys = sorted(latest, key=lambda k: (order.get(k[1], len(order)), k[1], k[2], k[0]))
    table = Table(title=f"agent {AGENT_ID} — {time.strftime('%H:%M:%S')}")
    for column in ("plugin", "metric", "labels", "value", "unit", "age"):
        table.add_column(column, justify="right" if column in ("value", "age") else "left")
    now = time.time()
    for key in keys[:40]:
        row = latest[key]
        table.add_row(key[0], key[1], key[2], _value(row["value"], row["unit"]), row["unit"],
                      f"{max(0.0, now - row['timestamp']):.1f}s")
    if not keys:
        table.add_row("-", "(no metrics yet)", "", "", "", "")
    return table


def _value(value: float, unit: str) -> str:
    if unit == "bytes":
        for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(value) < 1024 or suffix == "TiB":
                return f"{value:,.1f} {suffix}"
            value /= 1024
    return f"{value:,.2f}"
