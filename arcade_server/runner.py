"""Run the server: uvicorn (REST) and grpc.aio (agents) in ONE asyncio loop and process.

:func:`run` is what ``arcade server`` calls: it serves until SIGTERM or SIGINT, then shuts
down cleanly (stops accepting, gives open requests and streams ``shutdown_grace`` seconds,
flushes last-seen times, closes the database) and returns. :class:`ArcadeServer` is the same
thing as an object for embedding; :class:`ServerThread` runs one in a background thread (tests,
quick start). Port 0 means "any free port": the real ports are known after :meth:`start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import threading
from collections.abc import Generator
from typing import Any

import grpc
import uvicorn

from arcade_core.memory import tune_malloc
from arcade_core.rpc.v1.anonymous import ANONYMOUS_CERT_PEM

from .api.app import create_app
from .errors import StartupError
from .limits import GRPC_MAX_SEND
from .rpc.chunks import add_agent_service
from .rpc.servicer import AgentService
from .settings import Settings
from .state import ServerState

__all__ = ["ArcadeServer", "ServerThread", "grpc_options", "run", "serve", "settle_gc"]

log = logging.getLogger("arcade.server")

#: Allocations between young collections (CPython's default is 700).
_GC_GEN0 = 10_000

GRPC_OPTIONS = [
    # Every desired state and job the settings allow fits (arcade_server.limits); the agent
    # accepts as much. What agents send is bounded by the grpc_max_receive_bytes setting
    # (grpc_options).
    ("grpc.max_send_message_length", GRPC_MAX_SEND),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    # A fleet-wide rollout makes every agent call DownloadWheel at the same moment. gRPC
    # queues calls the application has not picked up yet and, past 1,000 of them (its
    # default), refuses new ones at random; 5,000 agents saw a quarter of their first
    # download attempts refused (benchmarks/fleet.py). The calls are cheap to hold: let
    # a whole fleet queue.
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 40_000),
]



def grpc_options(settings: Settings) -> list[tuple[str, int]]:
    """:data:`GRPC_OPTIONS` with the largest message an agent may send
    (``grpc_max_receive_bytes``: larger → ``RESOURCE_EXHAUSTED``, the server carries on)."""
    return [*GRPC_OPTIONS,
            ("grpc.max_receive_message_length", settings.grpc_max_receive_bytes)]


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the runner owns signals and shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect_host(host: str) -> str:
    """Where a local client reaches a listener bound to ``host`` (a wildcard: loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this. asyncio only sets TCP_NODELAY itself when the socket's
    # proto is IPPROTO_TCP (it is 0 here), and without it a keep-alive response written as
    # headers + body waits ~40 ms for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot listen for REST on {_host_port(host, port)}: {exc.strerror or exc}; "
            "choose another --http-port (0 = any free port)"
        ) from None
    return sock


class ArcadeServer:
    """The REST and gRPC servers over one shared :class:`ServerState`."""

    def __init__(self, settings: Settings, *, migrate_in_subprocess: bool = False) -> None:
        self.settings = settings
        self.state = ServerState(settings, migrate_in_subprocess=migrate_in_subprocess)
        self.http_port = 0
        self.grpc_port = 0
        self._grpc: Any = None
        self._uvicorn: _Uvicorn | None = None
        self._uvicorn_task: asyncio.Task[None] | None = None

    @property
    def http_url(self) -> str:
        """``http://`` on loopback, ``https://`` when REST is served with TLS."""
        host = _connect_host(self.settings.http_host)
        return f"{self.settings.http_scheme}://{_host_port(host, self.http_port)}"

    @property
    def grpc_target(self) -> str:
        return _host_port(_connect_host(self.settings.grpc_host), self.grpc_port)

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """TLS with a required client certificate: an agent's (chaining to the CA) or the
        well-known anonymous one, accepted by ``Enroll`` only (see
        :mod:`arcade_core.rpc.v1.anonymous`: gRPC Python cannot ask for a certificate
        without requiring one). The chain sent carries the CA, so an agent bootstrapping
        with ``--ca-hash`` can read it from the handshake."""
        tls = self.state.tls
        chain = tls.cert_pem if tls.ca.pem in tls.cert_pem else tls.cert_pem + tls.ca.pem
        return grpc.ssl_server_credentials(
            [(tls.key_pem, chain)], root_certificates=tls.ca.pem + ANONYMOUS_CERT_PEM,
            require_client_auth=True)

    async def start(self) -> None:
        settings = self.settings
        await self.state.start()
        try:
            self._grpc = grpc.aio.server(options=grpc_options(settings))
            add_agent_service(AgentService(self.state), self._grpc)
            target = _host_port(settings.grpc_host, settings.grpc_port)
            try:
                self.grpc_port = self._grpc.add_secure_port(target, self.grpc_credentials())
            except RuntimeError as exc:
                raise OSError(
                    f"cannot listen for gRPC on {target}: {exc}; choose another --grpc-port "
                    "(0 = any free port)"
                ) from None
            if not self.grpc_port:
                raise OSError(
                    f"cannot listen for gRPC on {target}; choose another --grpc-port "
                    "(0 = any free port)"
                )
            await self._grpc.start()

            sock = _listen(settings.http_host, settings.http_port)
            self.http_port = sock.getsockname()[1]
            ssl: dict[str, Any] = {}
            if settings.http_scheme == "https":
                ssl = {"ssl_certfile": str(self.state.tls.cert_file),
                       "ssl_keyfile": str(self.state.tls.key_file)}
            config = uvicorn.Config(
                create_app(settings, state=self.state),
                log_config=None,
                access_log=settings.log_level.lower() == "debug",
                ws="none",
                lifespan="on",
                timeout_graceful_shutdown=max(1, int(settings.shutdown_grace)),
                **ssl,
            )
            self._uvicorn = _Uvicorn(config)
            self._uvicorn_task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
            while not self._uvicorn.started:
                if self._uvicorn_task.done():
                    self._uvicorn_task.result()
                    raise StartupError("the REST server stopped while starting")
                await asyncio.sleep(0.01)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "Arcade server listening: REST %s (OpenAPI at %s/docs), gRPC %s; home %s; "
            "TLS CA %s (pin %s)",
            self.http_url, self.http_url, self.grpc_target, settings.home,
            settings.tls_ca_file or settings.home / "tls" / "ca.pem", self.state.tls.ca_hash,
        )

    async def stop(self) -> None:
        grace = self.settings.shutdown_grace
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        # Open Connect streams end at once (agents reconnect elsewhere); downloads get the grace.
        self.state.hub.close_all()
        if self._grpc is not None:
            await self._grpc.stop(grace)
            self._grpc = None
        if self._uvicorn_task is not None:
            try:
                await asyncio.wait_for(self._uvicorn_task, timeout=grace + 5)
            except (TimeoutError, asyncio.CancelledError):
                self._uvicorn_task.cancel()
            except SystemExit:
                pass
            self._uvicorn_task = None
        await self.state.close()
        log.info("Arcade server stopped")


def settle_gc() -> None:
    """Keep the cyclic garbage collector off what lives as long as the process.

    Everything allocated until the server listens (modules, the app, SQLAlchemy metadata:
    hundreds of thousands of objects) is moved out of the collector's generations with
    :func:`gc.freeze`, and young collections run less often. Without this, a server holding
    a thousand agent streams spent ~15% of its CPU during a rollout re-scanning those objects
    (measured with ``benchmarks/fleet.py``). For a process that serves, not for a test
    process that embeds a server.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_GEN0, *gc.get_threshold()[1:])


async def serve(settings: Settings, stop: asyncio.Event | None = None, *,
                own_process: bool = False) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None, main thread).

    ``own_process`` (the ``arcade server`` process, not a test embedding a server): migrate
    the database in a child process, so this one never imports Alembic, and call
    :func:`settle_gc` once listening."""
    server = ArcadeServer(settings, migrate_in_subprocess=own_process)
    await server.start()
    if own_process:
        settle_gc()
    own_signals = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if own_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        if own_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        await server.stop()


def run(settings: Settings) -> None:
    """Blocking: serve until SIGTERM/SIGINT, then shut down cleanly and return.

    For the ``arcade server`` process: glibc's allocator is tuned first
    (:func:`~arcade_core.memory.tune_malloc`)."""
    tune_malloc()
    asyncio.run(serve(settings, own_process=True))


class ServerThread:
    """An :class:`ArcadeServer` in a background thread with its own event loop.

    ``with ServerThread(settings) as server: httpx.get(server.http_url + "/api/v1/health")``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: ArcadeServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="arcade-server", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            server = ArcadeServer(self.settings)
            try:
                await server.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self.server = server
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await server.stop()

        try:
            asyncio.run(main())
        except BaseException as exc:  # pragma: no cover (reported through start())
            self._error = self._error or exc
            self._ready.set()

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the Arcade server did not start within {timeout}s")
        if self._error is not None:
            raise self._error
        return self

    @property
    def http_url(self) -> str:
        assert self.server is not None
        return self.server.http_url

    @property
    def grpc_target(self) -> str:
        assert self.server is not None
        return self.server.grpc_target

    @property
    def state(self) -> ServerState:
        assert self.server is not None
        return self.server.state

    @property
    def admin_token(self) -> str:
        """The first admin token's secret, from ``<home>/admin-token`` (tests, quick start)."""
        return self.settings.admin_token_file.read_text(encoding="utf-8").strip()

    @property
    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Bearer <the admin token>``."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the server's loop and return its result (tests)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
