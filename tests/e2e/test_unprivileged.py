"""The agent runs as an ordinary user: a real ``python -m arcade_agent`` process, started as
``nobody`` when the tests run as root (as the current user otherwise), against a real server;
it installs a process-isolated plugin, runs it, and everything it writes is its own."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import site
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.agent.plugkit import probe_wheel
from tests.waiting import DEADLINE

from .harness import AGENT_CONFIG, REPO, Server, wait_until

AGENT_ID = "e2e-unprivileged"


def _account() -> pwd.struct_passwd:
    """Who the agent runs as: ``nobody`` when we are root, else ourselves (not root)."""
    if os.geteuid() == 0:
        try:
            return pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("running as root, but there is no 'nobody' user to run the agent as")
    return pwd.getpwuid(os.geteuid())


def _as_user(user: pwd.struct_passwd) -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _interpreter(user: pwd.struct_passwd, env: dict[str, str]) -> str:
    """A Python of this version that ``user`` can run and that imports the agent: this one,
    or (when it lives somewhere the user may not enter, e.g. under /root) the system's."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    tried = []
    for candidate in dict.fromkeys([sys.executable, f"/usr/bin/python{version}",
                                    f"/usr/local/bin/python{version}"]):
        try:
            probe = subprocess.run([candidate, "-c", "import arcade_agent, grpc, psutil"],
                                   env=env, capture_output=True, timeout=DEADLINE,
                                   cwd="/", **_as_user(user))
        except OSError as exc:
            tried.append(f"{candidate}: {exc}")
            continue
        if probe.returncode == 0:
            return candidate
        tried.append(f"{candidate}: {probe.stderr.decode(errors='replace').strip()[-300:]}")
    pytest.skip(f"no Python {version} that user {user.pw_name!r} may run imports the agent "
                f"({'; '.join(tried)})")


@pytest.fixture
def agent_home() -> Iterator[Path]:
    """A home outside the test's tmp_path (whose parents only root may enter)."""
    home = Path(tempfile.mkdtemp(prefix="arcade-unprivileged-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_the_agent_runs_as_an_ordinary_user_and_owns_everything_it_writes(
    tmp_path: Path, agent_home: Path
) -> None:
    user = _account()
    assert user.pw_uid != 0
    os.chown(agent_home, user.pw_uid, user.pw_gid)
    agent_home.chmod(0o700)
    home = agent_home / "agent"
    config = agent_home / "agent.toml"
    config.write_text(AGENT_CONFIG)
    os.chown(config, user.pw_uid, user.pw_gid)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(agent_home), "LANG": "C.UTF-8",
           "PYTHONPATH": os.pathsep.join([str(REPO), *site.getsitepackages()]),
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    python = _interpreter(user, env)

    server = Server(tmp_path / "server-home", tmp_path / "server.log").start()
    log = tmp_path / "agent.log"
    agent: subprocess.Popen[bytes] | None = None
    try:
        server.publish(probe_wheel(tmp_path / "wheels", name="probe-unprivileged"))
        with open(log, "ab") as out:
            agent = subprocess.Popen(
                [python, "-m", "arcade_agent", "--server", server.grpc_target, "--home",
                 str(home), "--id", AGENT_ID, "--config", str(config)],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd="/",
                start_new_session=True, **_as_user(user))
        wait_until(lambda: (server.agent(AGENT_ID) or {}).get("connected"),
                   what="the unprivileged agent to connect")
        installed = server.http.post(f"/agents/{AGENT_ID}/plugins", params={"wait": DEADLINE},
                                     json={"plugin": "probe-unprivileged",
                                           "isolation": "process"})
        assert installed.status_code == 200, installed.text
        assert installed.json()["state"]["state"] == "running", installed.text
        wait_until(lambda: server.http.get(f"/agents/{AGENT_ID}/metrics",
                                           params={"name": "probe.major"}).json(),
                   what="a metric from the plugin's process")

        process = psutil.Process(agent.pid)
        children = process.children(recursive=True)
        assert children, "the process-isolated plugin runs in a child process"
        for proc in [process, *children]:
            uids = proc.uids()
            assert (uids.real, uids.effective) == (user.pw_uid, user.pw_uid), proc
        written = [Path(root) / name for root, dirs, files in os.walk(home)
                   for name in dirs + files]
        assert any(p.name == "state.json" for p in written)
        assert any("probe" in str(p) and "envs" in p.parts for p in written)
        foreign = [str(p) for p in [home, *written] if p.lstat().st_uid != user.pw_uid]
        assert not foreign, f"not owned by {user.pw_name}: {foreign}"
    finally:
        if agent is not None and agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                os.killpg(agent.pid, signal.SIGKILL)
                agent.wait(DEADLINE)
        server.close()
        print(f"--- agent log ---\n{log.read_text(errors='replace')[-6000:]}"
              if log.exists() else "")
    assert agent is not None and agent.returncode == 0, agent and agent.returncode
