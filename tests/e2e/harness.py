"""Real ``arcade server`` and ``arcade agent`` processes on loopback ports, for e2e tests.

Each process runs the installed ``arcade`` console script (the command a user types), logs
to a file under the test's tmp dir, and is stopped with SIGTERM (or killed with SIGKILL when
a test simulates a crash). Ports are chosen by the OS (bind to port 0) once per server, so a
restarted server comes back at the same address the agent keeps dialling.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from arcade_core import signing
from tests.waiting import DEADLINE, until_sync

T = TypeVar("T")

ARCADE = Path(sys.executable).with_name("arcade")
REPO = Path(__file__).resolve().parents[2]

# Short intervals so the scenarios run in seconds.
AGENT_CONFIG = """\
collect_interval = 0.5
heartbeat_interval = 1
reconnect_initial = 0.1
reconnect_max = 0.5
restart_backoff = 0.05
call_timeout = 30
download_retries = 2
download_timeout = 30
"""
#: An agent that runs jobs: it opts in in its own config, as a real one must.
JOBS_AGENT_CONFIG = AGENT_CONFIG + """
[jobs]
enabled = true
"""
#: The key the harness signs everything it publishes with (:meth:`Server.publish`), made
#: once per test session; :data:`TRUST_HARNESS_KEY` is the agent config that trusts it.
PUBLISHER_KEY = Ed25519PrivateKey.generate()
PUBLISHER_KEY_TEXT = signing.public_key_text(
    PUBLISHER_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
TRUST_HARNESS_KEY = f"""
[[trust.keys]]
key = "{PUBLISHER_KEY_TEXT}"
"""
SERVER_ENV = {
    "ARCADE_SERVER_HEARTBEAT_INTERVAL": "1",
    "ARCADE_SERVER_OFFLINE_AFTER": "3",
    "ARCADE_SERVER_WAIT_POLL_INTERVAL": "0.2",
    "ARCADE_SERVER_SHUTDOWN_GRACE": "1",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], T | None], timeout: float = DEADLINE,
               interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout."""
    value = until_sync(check, timeout=timeout, interval=interval, what=what)
    assert value is not None
    return value


class Proc:
    """A child process with its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, cwd=REPO, start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = DEADLINE) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in ``timeout``; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash: no cleanup runs)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(DEADLINE)


class Server(Proc):
    def __init__(self, home: Path, log: Path) -> None:
        self.home = home
        self.http_port = free_port()
        self.grpc_port = free_port()
        super().__init__(
            [str(ARCADE), "server", "--home", str(home),
             "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port)],
            log, env=SERVER_ENV,
        )
        #: The first admin token (set, so a client can use it before the server writes it).
        self.admin_token = "arcade_e2e_" + secrets.token_urlsafe(24)
        self.env["ARCADE_SERVER_ADMIN_TOKEN"] = self.admin_token
        self.http = httpx.Client(base_url=f"{self.url}/api/v1", timeout=30.0,
                                 headers=self.auth_headers)

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> Server:
        super().start()

        def healthy() -> bool:
            if not self.alive:
                raise AssertionError(f"arcade server exited:\n{self.log()[-3000:]}")
            try:
                return self.http.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, what="the server to answer /health")
        return self

    def enrollment_env(self) -> dict[str, str]:
        """The environment an agent enrolls with on its first start: a one-use token made
        through REST and the CA pin from its answer (the agent fetches and checks the CA)."""
        response = self.http.post("/enrollment-tokens", json={"uses": 1, "name": "e2e"})
        assert response.status_code == 201, response.text
        body = response.json()
        return {"ARCADE_AGENT_ENROLL_TOKEN": body["token"],
                "ARCADE_AGENT_CA_HASH": body["ca_hash"]}

    def publish(self, *wheels: Path, key: Ed25519PrivateKey | None = PUBLISHER_KEY
                ) -> dict[str, Any]:
        """Publish ``wheels`` signed with ``key`` (the harness's :data:`PUBLISHER_KEY` unless
        told; ``None``: unsigned), as ``arcade publish --sign`` does."""
        from arcade_server.cli._signing import sign_upload

        paths, fields = sign_upload(key, list(wheels)) if key is not None else (list(wheels), {})
        files = [("wheels", (w.name, w.read_bytes(), "application/octet-stream"))
                 for w in paths]
        response = self.http.post("/plugins", files=files, data=fields)
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body

    def install(self, agent: str, spec: str, *, wait: float = DEADLINE, **body: Any) -> Any:
        response = self.http.post(f"/agents/{agent}/plugins", params={"wait": wait},
                                  json={"plugin": spec, **body}, timeout=wait + 30)
        assert response.status_code in (200, 202), response.text
        return response

    def uninstall(self, agent: str, name: str) -> None:
        response = self.http.delete(f"/agents/{agent}/plugins/{name}")
        assert response.status_code in (200, 202), response.text

    def plugins(self, agent: str) -> dict[str, dict[str, Any]]:
        response = self.http.get(f"/agents/{agent}/plugins")
        if response.status_code == 404:
            return {}
        assert response.status_code == 200, response.text
        return {p["name"]: p for p in response.json()}

    def metrics(self, agent: str, **params: Any) -> list[dict[str, Any]]:
        response = self.http.get(f"/agents/{agent}/metrics", params=params)
        if response.status_code == 404:
            return []
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()
        return result

    def agent(self, agent: str) -> dict[str, Any] | None:
        response = self.http.get(f"/agents/{agent}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def close(self) -> None:
        self.stop()
        self.http.close()


class AgentProc(Proc):
    def __init__(self, home: Path, server: Server, agent_id: str, log: Path,
                 config: str = AGENT_CONFIG, enroll: dict[str, str] | None = None) -> None:
        """``enroll``: the enrollment environment (default: a new one from ``server``)."""
        self.home = home
        self.agent_id = agent_id
        config_file = home.parent / f"{agent_id}.toml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text(config)
        super().__init__(
            [str(ARCADE), "agent", "--server", server.grpc_target, "--home", str(home),
             "--id", agent_id, "--config", str(config_file), "--label", "e2e=yes"],
            log, env=server.enrollment_env() if enroll is None else enroll,
        )

    def env_dirs(self, name: str) -> list[str]:
        root = self.home / "envs" / name
        return sorted(p.name for p in root.iterdir()) if root.exists() else []
