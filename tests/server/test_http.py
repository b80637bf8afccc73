"""The CLI's HTTP/1.1 client (:mod:`arcade_server._http` under :class:`ArcadeClient`): the
framings a server may choose, a kept-alive connection the server closed, streaming uploads,
and that ``arcade status`` against a real server imports none of the heavy libraries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from arcade_server._http import Connection, Timeout, TransportError
from arcade_server.client import ApiUnreachable, ArcadeClient
from arcade_server.runner import ServerThread

Answer = Callable[[bytes], bytes]


class _OneShotServer:
    """A loopback socket server that answers each request with ``answer(request)`` and then
    closes the connection (without saying so when ``silent_close``): a real peer, no mocks."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.stopping = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            if self.stopping:
                conn.close()
                return
            with conn:
                self.connections += 1
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                self.requests.append(head + b"\r\n\r\n" + body)
                conn.sendall(self.answer(head + b"\r\n\r\n" + body))

    def close(self) -> None:
        self.stopping = True
        socket.create_connection(("127.0.0.1", self.port)).close()  # wakes accept()
        self.thread.join(30)
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], _OneShotServer]]:
    started: list[_OneShotServer] = []

    def start(answer: Answer) -> _OneShotServer:
        started.append(_OneShotServer(answer))
        return started[-1]

    yield start
    for server in started:
        server.close()


def test_content_length_and_chunked_answers(serve: Callable[[Answer], _OneShotServer]) -> None:
    fixed = serve(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"a\": true}")
    chunked = serve(lambda _: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"4\r\n{\"b\"\r\n6;ext=1\r\n: [1]}\r\n0\r\nX-Trailer: y\r\n\r\n"))
    until_close = serve(lambda _: b"HTTP/1.0 200 OK\r\n\r\n[1, 2]")
    for server, expected in ((fixed, {"a": True}), (chunked, {"b": [1]}),
                             (until_close, [1, 2])):
        with ArcadeClient(f"http://127.0.0.1:{server.port}") as api:
            assert api._json("GET", "/x", params={"on": True, "n": 2}) == expected
        assert server.requests[0].startswith(b"GET /api/v1/x?on=true&n=2 HTTP/1.1\r\n")


def test_a_kept_alive_connection_the_server_closed_is_opened_again(
    serve: Callable[[Answer], _OneShotServer]
) -> None:
    # The server closes after each answer without "Connection: close", as a server whose
    # keep-alive timeout ran out between two calls does.
    server = serve(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    with ArcadeClient(f"http://127.0.0.1:{server.port}", token="t0k") as api:
        assert api.health() == {}
        assert api.health() == {}
        assert api._json("POST", "/y", json={"k": 1}) == {}
    assert server.connections == 3
    assert b"Authorization: Bearer t0k\r\n" in server.requests[2]
    assert server.requests[2].endswith(b'\r\n\r\n{"k": 1}')


def test_an_upload_streams_from_disk_with_its_length(
    serve: Callable[[Answer], _OneShotServer], tmp_path: Path
) -> None:
    server = serve(lambda _: (b"HTTP/1.1 201 Created\r\nContent-Length: 15\r\n\r\n"
                              b'{"name": "big"}'))
    wheel = tmp_path / "big-1.0.0-py3-none-any.whl"
    wheel.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    seen: list[int] = []
    with ArcadeClient(f"http://127.0.0.1:{server.port}") as api:
        status, body = api.publish([wheel], progress=seen.append)
        assert (status, body) == (201, {"name": "big"})
        assert sum(seen) == api.upload_size([wheel]) and len(seen) > 10
    assert wheel.read_bytes() in server.requests[0]


def test_failures_are_transport_errors(serve: Callable[[Answer], _OneShotServer]) -> None:
    garbage = serve(lambda _: b"SSH-2.0-OpenSSH\r\n")
    silent = serve(lambda _: b"")
    for server in (garbage, silent):
        with ArcadeClient(f"http://127.0.0.1:{server.port}") as api, \
                pytest.raises(ApiUnreachable, match="cannot reach the Arcade API"):
            api.health()
    connection = Connection(f"http://127.0.0.1:{garbage.port}")
    with pytest.raises(TransportError, match=r"not an HTTP/1\.x answer"):
        connection.request("GET", "/", headers={}, body=None, timeout=Timeout(30))
    connection.close()


def test_arcade_status_against_a_server_imports_no_heavy_library(
    server: ServerThread, tmp_path: Path
) -> None:
    code = (
        "import sys\n"
        "from arcade_core.commands import main\n"
        f"status = main(['status', '--agent', 'nobody', '--api', {server.http_url!r}])\n"
        "heavy = ('fastapi', 'sqlalchemy', 'grpc', 'uvicorn', 'arcade_agent', 'httpx', 'typer',\n"
        "         'rich', 'pydantic', 'http.client', 'email', 'importlib.metadata')\n"
        "print('EXIT', status)\n"
        "print('LOADED', *[m for m in heavy if m in sys.modules])\n"
    )
    env = {**os.environ, "ARCADE_TOKEN": server.admin_token, "XDG_CONFIG_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env=env, timeout=120)
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == "EXIT 1" and "no agent with id 'nobody'" in result.stderr
    assert lines[-1] == "LOADED", result.stdout


def test_https_with_the_servers_ca_file_and_without(tmp_path: Path) -> None:
    from tests.server.conftest import start_server

    server = start_server(tmp_path / "home", http_host="0.0.0.0")
    try:
        assert server.http_url.startswith("https://127.0.0.1:")
        ca = tmp_path / "ca.pem"
        ca.write_bytes(server.state.tls.ca.pem)
        with ArcadeClient(server.http_url, token=server.admin_token, ca_file=ca) as api:
            assert api.health()["status"] == "ok"
            assert api.agents() == [] and api.health()["status"] == "ok"  # one kept connection
        with ArcadeClient(server.http_url, token=server.admin_token) as api, \
                pytest.raises(ApiUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            api.health()  # the system's CAs do not know the server's private CA
        plain = server.http_url.replace("https://", "http://")
        with ArcadeClient(plain, token=server.admin_token) as api, \
                pytest.raises(ApiUnreachable, match="cannot reach the Arcade API"):
            api.health()  # plain HTTP to the TLS port
    finally:
        server.stop()
