"""arcade-notify-webhook: events POSTed to a real HTTP server on 127.0.0.1 (http.server in a
thread) by the plugin class, its manifest, and its built wheel installed and loaded by a real
PluginHost, in-process and in a child process."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from arcade_core import Event, InvalidConfig, Manifest, PluginLoadError
from arcade_core.testing import PluginProject
from tests.waiting import DEADLINE

DIST = Path(__file__).resolve().parent.parent
MANIFEST = DIST / "arcade_notify_webhook" / "arcade-plugin.json"


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Reply:
    """How the server answers one request: after ``delay`` seconds, ``status`` with ``body``."""

    status: int = 200
    body: bytes = b'{"ok": true}'
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """A webhook receiver: a real ThreadingHTTPServer on 127.0.0.1, port chosen by the OS.

    It answers with the queued :class:`Reply` objects in turn (then with ``default``) and
    keeps every request it got in :attr:`requests`.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self.closing = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received("POST", self.path, dict(self.headers.items()), body,
                                 time.monotonic())
                    )
                    reply = receiver.replies.pop(0) if receiver.replies else receiver.default
                if reply.delay and receiver.closing.wait(reply.delay):
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the client gave up (timeout) and closed the connection
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/arcade?token=s3cret"
        # A short poll interval: shutdown() waits up to one interval for the loop to end.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=DEADLINE)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def _event() -> Event:
    return Event("job.finished", {"job_id": "42", "status": "succeeded", "exit_code": 0})


def _config(url: str, **extra: object) -> dict[str, object]:
    """The manifest's defaults with ``url`` and ``extra``, as the host would pass them."""
    return Manifest.from_json(MANIFEST.read_text()).validate_config({"url": url, **extra})


def test_notify_posts_the_event_as_json(arcade_module: ModuleType, receiver: Receiver) -> None:
    event = _event()
    arcade_module.NotifyWebhook(_config(receiver.url)).notify(event)
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path == "/hooks/arcade?token=s3cret"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("arcade-notify-webhook/")
    assert request.headers["X-Arcade-Event"] == "job.finished"
    assert request.json() == event.to_dict()
    assert Event.from_dict(request.json()) == event  # type: ignore[arg-type]


def test_configured_headers_are_sent(arcade_module: ModuleType, receiver: Receiver) -> None:
    config = _config(receiver.url, headers={"Authorization": "Bearer abc", "X-Team": "ci"})
    arcade_module.NotifyWebhook(config).notify(_event())
    [request] = receiver.requests
    assert request.headers["Authorization"] == "Bearer abc"
    assert request.headers["X-Team"] == "ci"


def test_credentials_in_the_url_become_basic_auth(
    arcade_module: ModuleType, receiver: Receiver
) -> None:
    url = receiver.url.replace("http://", "http://bot:p%40ss@")
    arcade_module.NotifyWebhook(_config(url)).notify(_event())
    [request] = receiver.requests
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"bot:p@ss").decode()


def test_an_event_given_as_a_mapping_and_values_that_are_not_json(
    arcade_module: ModuleType, receiver: Receiver
) -> None:
    arcade_module.NotifyWebhook(_config(receiver.url)).notify(
        {"kind": "plugin.failed", "data": {"path": Path("/tmp/x")}, "timestamp": 1.5}
    )
    [request] = receiver.requests
    assert request.json() == {"kind": "plugin.failed", "data": {"path": "/tmp/x"},
                              "timestamp": 1.5}


def test_a_500_is_retried_after_the_backoff_and_then_delivered(
    arcade_module: ModuleType, receiver: Receiver
) -> None:
    receiver.replies = [Reply(500, b"database is down")]
    arcade_module.NotifyWebhook(_config(receiver.url, backoff=0.1)).notify(_event())
    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers["X-Arcade-Delivery"] == second.headers["X-Arcade-Delivery"]
    assert second.at - first.at >= 0.1


def test_gives_up_after_the_retries_with_every_attempt_in_the_error(
    arcade_module: ModuleType, receiver: Receiver
) -> None:
    receiver.default = Reply(503, b"overloaded")
    plugin = arcade_module.NotifyWebhook(_config(receiver.url, retries=2, backoff=0.05))
    with pytest.raises(arcade_module.DeliveryError) as caught:
        plugin.notify(_event())
    message = str(caught.value)
    assert message.startswith(
        f"webhook POST to http://127.0.0.1:{receiver.server.server_address[1]} gave up "
        "after 3 attempts: 1: HTTP 503 Service Unavailable (overloaded); 2: HTTP 503"
    )
    assert "s3cret" not in message and "/hooks" not in message  # the URL may hold secrets
    assert len(receiver.requests) == 3
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[0] >= 0.05
    assert gaps[1] >= 0.1  # the backoff doubles


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_a_4xx_is_not_retried(arcade_module: ModuleType, receiver: Receiver, status: int) -> None:
    receiver.default = Reply(status, b'{"error": "unknown channel"}')
    plugin = arcade_module.NotifyWebhook(_config(receiver.url, retries=3, backoff=0.05))
    with pytest.raises(arcade_module.DeliveryError, match=rf"not retried: HTTP {status} .*"
                       r"unknown channel.*check the url and headers"):
        plugin.notify(_event())
    assert len(receiver.requests) == 1


def test_a_redirect_is_not_followed(arcade_module: ModuleType, receiver: Receiver) -> None:
    receiver.default = Reply(302, b"", headers={"Location": "https://elsewhere.example/hook"})
    plugin = arcade_module.NotifyWebhook(_config(receiver.url, retries=2))
    with pytest.raises(arcade_module.DeliveryError,
                       match=r"HTTP 302 .*redirects to https://elsewhere\.example; set url"):
        plugin.notify(_event())
    assert [r.method for r in receiver.requests] == ["POST"]


def test_the_timeout_bounds_each_attempt(arcade_module: ModuleType, receiver: Receiver) -> None:
    receiver.default = Reply(delay=3600.0)  # never in time (closing the receiver ends it)
    plugin = arcade_module.NotifyWebhook(_config(receiver.url, timeout=0.3, retries=1,
                                                 backoff=0.0))
    started = time.monotonic()
    with pytest.raises(arcade_module.DeliveryError,
                       match=r"gave up after 2 attempts: 1: no answer within 0\.3 s \(timeout\)"):
        plugin.notify(_event())
    assert time.monotonic() - started >= 0.6  # each attempt waited its 0.3 s
    assert len(receiver.requests) == 2


def test_refused_connections_are_retried_then_reported(
    arcade_module: ModuleType, closed_port_url: str
) -> None:
    plugin = arcade_module.NotifyWebhook(_config(closed_port_url, retries=2, backoff=0.05))
    started = time.monotonic()
    with pytest.raises(arcade_module.DeliveryError,
                       match=r"gave up after 3 attempts: 1: connection failed "
                             r"\(ConnectionRefusedError: .*\); 2: .*; 3: "):
        plugin.notify(_event())
    assert time.monotonic() - started >= 0.15  # 0.05 + 0.1 of backoff


def test_no_retries_reports_the_single_failure(
    arcade_module: ModuleType, closed_port_url: str
) -> None:
    plugin = arcade_module.NotifyWebhook(_config(closed_port_url, retries=0))
    with pytest.raises(arcade_module.DeliveryError,
                       match=r"^webhook POST to http://127\.0\.0\.1:\d+ failed: connection"):
        plugin.notify(_event())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "url is required"),
        ({"url": "ftp://example.com/x"}, r"url must start with http:// or https://, not ftp://"),
        ({"url": "http:///path"}, "has no host name"),
        ({"url": "http://example.com:99999/"}, "invalid port"),
        ({"url": "https://example.com", "headers": {"Bad Name": "x"}}, "not a valid HTTP field"),
        ({"url": "https://example.com", "headers": {"X-A": "1\r\nX-B: 2"}}, "line breaks"),
        ({"url": "https://example.com", "timeout": 0}, "timeout must be a positive"),
        ({"url": "https://example.com", "retries": -1}, "retries must be a whole number"),
    ],
)
def test_a_bad_config_is_refused_by_the_class(
    arcade_module: ModuleType, config: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        arcade_module.NotifyWebhook(config)


def test_manifest_requires_an_http_url_and_fills_in_defaults() -> None:
    manifest = Manifest.from_json(MANIFEST.read_text())
    assert manifest.type == "notifier"
    assert manifest.validate_config({"url": "https://hooks.example.com/x"}) == {
        "url": "https://hooks.example.com/x",
        "timeout": 5,
        "retries": 3,
        "backoff": 0.5,
        "headers": {},
    }
    with pytest.raises(InvalidConfig, match=r"'url' is a required property"):
        manifest.validate_config({})
    with pytest.raises(InvalidConfig, match=r"config\.url: 'file:///etc/passwd' does not match"):
        manifest.validate_config({"url": "file:///etc/passwd"})
    with pytest.raises(InvalidConfig, match=r'config\.headers\["X-N"\]: 1 is not of type'):
        manifest.validate_config({"url": "http://h", "headers": {"X-N": 1}})


def test_built_wheel_has_no_dependencies(arcade_project: PluginProject) -> None:
    from arcade_core import inspect_wheel

    info = inspect_wheel(arcade_project.wheel)
    assert (info.name, info.version) == ("arcade-notify-webhook", "1.0.0")
    assert info.entry_point is not None
    assert info.entry_point.value == "arcade_notify_webhook:NotifyWebhook"
    assert info.requires_dist == ()
    assert info.manifest == Manifest.from_json(MANIFEST.read_text())


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_built_wheel_delivers_events_through_plugin_host(
    tmp_path: Path, arcade_project: PluginProject, receiver: Receiver, isolation: str
) -> None:
    from arcade_core import PluginHost

    event = _event()
    with PluginHost(tmp_path / "home") as host:
        host.install([arcade_project.wheel])
        status = host.load("arcade-notify-webhook", config={"url": receiver.url},
                           isolation=isolation)
        assert status.state == "running"
        assert status.hooks == ["notify"]
        outcome = host.call("notify", event=event)
        assert outcome.errors == {}
        assert outcome.results == {"arcade-notify-webhook": None}
        assert host.hook.notify(event=Event("plugin.loaded", {"name": "x"})) == []
        assert host.status("arcade-notify-webhook").calls == 2
    assert [r.json() for r in receiver.requests] == [
        event.to_dict(),
        {"kind": "plugin.loaded", "data": {"name": "x"},
         "timestamp": receiver.requests[1].json()["timestamp"]},  # type: ignore[index]
    ]


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_a_failed_delivery_is_recorded_by_the_host(
    tmp_path: Path, arcade_project: PluginProject, receiver: Receiver, isolation: str
) -> None:
    from arcade_core import PluginHost

    receiver.default = Reply(500, b"boom")
    with PluginHost(tmp_path / "home") as host:
        host.install([arcade_project.wheel])
        host.load("arcade-notify-webhook", isolation=isolation,
                  config={"url": receiver.url, "retries": 1, "backoff": 0.01})
        outcome = host.call("notify", event=_event())
        error = outcome.errors["arcade-notify-webhook"]
        assert "gave up after 2 attempts" in error
        assert "HTTP 500" in error
        status = host.status("arcade-notify-webhook")
        assert status.state == "running"  # a failed delivery is not a crash
        assert (status.calls, status.errors) == (1, 1)
        assert "gave up after 2 attempts" in status.last_error
    assert len(receiver.requests) == 2


def test_the_host_refuses_a_config_without_url(
    tmp_path: Path, arcade_project: PluginProject
) -> None:
    from arcade_core import PluginHost

    with PluginHost(tmp_path / "home") as host:
        host.install([arcade_project.wheel])
        with pytest.raises(InvalidConfig, match="'url' is a required property"):
            host.load("arcade-notify-webhook", config={})
        with pytest.raises((InvalidConfig, PluginLoadError), match="url"):
            host.load("arcade-notify-webhook", config={"url": "http://"})
        assert host.plugins() == []
