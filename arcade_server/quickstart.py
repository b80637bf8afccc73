"""``arcade quickstart``: the whole of Arcade on one machine, in one command.

It does, in order, and says so as it goes:

1. starts a server (SQLite and a local blob store under ``HOME/server``) in a background
   thread, and prints where the REST API, its docs and the gRPC port are;
2. builds the built-in plugins into real wheels and gathers their dependency wheels
   (:mod:`arcade_server.builtin`; psutil is fetched with pip once, then cached);
3. publishes them through the REST API, as an operator would;
4. starts a local agent in this process (the :class:`arcade_agent.Agent` embedding API);
5. installs ``arcade-cpu@1.0.0`` and ``arcade-memory@1.0.0`` on it through the REST API and
   waits until the agent reports them ``running``;
6. shows the agent's metrics as the server stored them (read back from
   ``GET /api/v1/agents/{id}/metrics``): a live table on a terminal, a plain table per refresh
   otherwise, until Ctrl+C or for ``--seconds``.

Nothing here is a shortcut: the data path is the product's (REST → desired state → gRPC
stream → download with sha256 check → plugin environment → collect → metric batches → SQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

__all__ = ["QUICKSTART_PLUGINS", "QuickstartError", "default_home", "run_quickstart"]

log = logging.getLogger("arcade.quickstart")

QUICKSTART_PLUGINS = ("arcade-cpu@1.0.0", "arcade-memory@1.0.0")
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


def run_quickstart(
    *,
    home: Path | None = None,
    seconds: float | None = None,
    http_port: int | None = None,
    grpc_port: int | None = None,
    interval: float = 2.0,
    console: Console | None = None,
) -> None:
    """Run the quick start (blocking) until Ctrl+C/SIGTERM, or for ``seconds``.

    ``http_port``/``grpc_port`` ``None`` try 8080/9090 and fall back to any free port when
    those are taken; 0 means any free port. Raises :class:`QuickstartError`.
    """
    console = console or Console(highlight=False)
    asyncio.run(_main(home or default_home(), seconds, http_port, grpc_port, interval, console))


async def _main(home: Path, seconds: float | None, http_port: int | None,
                grpc_port: int | None, interval: float, console: Console) -> None:
    from arcade_agent import Agent, AgentSettings

    from .builtin import PluginBuildError, build_builtin_wheels, builtin_dependency_wheels
    from .client import ApiError, ArcadeClient
    from .wheelhouse import WheelhouseError

    home = home.expanduser().absolute()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    step = _Steps(console)

    with step("Starting the Arcade server (SQLite + local blob store)"):
        server = await asyncio.to_thread(_start_server, home / "server", http_port, grpc_port)
    try:
        console.print(f"  REST API  [bold]{server.http_url}/api/v1[/]   "
                      f"docs: [bold]{server.http_url}/docs[/]")
        console.print(f"  gRPC      [bold]{server.grpc_target}[/]   data: {home / 'server'}")
        client = ArcadeClient(server.http_url, timeout=60.0)
        try:
            with step("Building the built-in plugins into wheels"):
                wheels = await asyncio.to_thread(build_builtin_wheels, home / "wheels")
            console.print("  " + ", ".join(sorted(p.name for p in wheels.values())))
            with step("Gathering their dependency wheels (pip download, cached)"):
                deps = {name: await asyncio.to_thread(builtin_dependency_wheels, [wheel])
                        for name, wheel in wheels.items()}
            console.print("  " + (", ".join(sorted({p.name for d in deps.values() for p in d}))
                                  or "none needed"))
            with step("Publishing them through the REST API (POST /api/v1/plugins)"):
                for name, wheel in sorted(wheels.items()):
                    status, body = await asyncio.to_thread(client.publish,
                                                           [wheel, *deps[name]])
                    what = "published" if status == 201 else "already published"
                    console.print(f"  {body.get('name', name)}@{body.get('version', '?')}: "
                                  f"{what}")

            settings = AgentSettings(
                server=server.grpc_target, home=home / "agent", agent_id=AGENT_ID,
                labels={"quickstart": "true"}, collect_interval=interval,
                collect_interval_override=interval,
                reconnect_initial=0.2, reconnect_max=2.0,
            )
            with step(f"Starting a local agent {AGENT_ID!r} (embedded, home "
                      f"{settings.home})"):
                agent = Agent(settings)
                await agent.start()
            try:
                await agent.wait_connected(30)
                for spec in QUICKSTART_PLUGINS:
                    with step(f"Installing {spec} on {AGENT_ID!r} "
                              f"(POST /api/v1/agents/{AGENT_ID}/plugins)"):
                        status, body = await asyncio.to_thread(
                            client.install, AGENT_ID, spec, wait=60
                        )
                        # 200: {"state": {"state": "running", "error": ...}, ...};
                        # 202 (the agent did not answer in time): the state so far.
                        outcome = body.get("state")
                        if not isinstance(outcome, dict):
                            outcome = body
                        state = outcome.get("state") or "pending"
                        if state == "failed":
                            raise QuickstartError(f"{spec} failed on the agent: "
                                                  f"{outcome.get('error')}")
                        console.print(f"  {spec}: {state} (HTTP {status})")
                console.print(
                    f"\n[bold]Live metrics[/] from GET {server.http_url}/api/v1/agents/"
                    f"{AGENT_ID}/metrics (every {interval:g}s; "
                    + (f"for {seconds:g}s" if seconds else "Ctrl+C to stop") + ")"
                )
                await _show_metrics(client, console, interval, seconds, stop)
            finally:
                with step("Stopping the agent"):
                    await agent.stop()
        except ApiError as exc:
            raise QuickstartError(f"the REST API refused a step: {exc.message}") from None
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
    console.print(
        "\nDone. Next: run [bold]arcade server[/] and [bold]arcade agent --server "
        "HOST:9090[/] on your machines, then [bold]arcade publish[/] / [bold]arcade install[/]."
    )


def _start_server(home: Path, http_port: int | None, grpc_port: int | None) -> Any:
    from .runner import ServerThread
    from .settings import Settings

    def attempt(http: int, grpc: int) -> ServerThread:
        settings = Settings(home=home, host="127.0.0.1", http_port=http, grpc_port=grpc,
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


async def _show_metrics(client: Any, console: Console, interval: float,
                        seconds: float | None, stop: asyncio.Event) -> None:
    deadline = time.monotonic() + seconds if seconds else None
    live = Live(console=console, auto_refresh=False) if console.is_terminal else None
    with live if live is not None else contextlib.nullcontext():
        while not stop.is_set():
            rows = await asyncio.to_thread(client.metrics, AGENT_ID, limit=500)
            table = _table(rows)
            if live is not None:
                live.update(table, refresh=True)
            else:
                console.print(table)
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


class _Steps:
    """Prints one line per step, and how long it took or why it failed."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.n = 0

    @contextlib.contextmanager
    def __call__(self, text: str) -> Iterator[None]:
        self.n += 1
        started = time.perf_counter()
        self.console.print(f"[bold cyan]{self.n}.[/] {text} ...")
        try:
            yield
        except Exception as exc:
            self.console.print(f"   [red]failed:[/] {exc}")
            raise
        self.console.print(f"   [green]done[/] in {time.perf_counter() - started:.2f}s")
