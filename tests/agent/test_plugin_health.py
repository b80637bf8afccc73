"""Failures reach the operator (issue 14, item 1): a real agent and a real server.

A plugin whose ``collect`` raises shows ``degraded`` (with its last error, when, and how many
calls failed) until a call succeeds, inline and in a process; a process plugin that keeps
crashing ends ``failed`` with its restarts and last error; a config the plugin rejects at
start is ``failed`` with its message, not ``running``; and what the plugin logged can be read
through the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from arcade_agent import Agent
from arcade_server.client import ArcadeClient
from arcade_server.runner import ServerThread
from tests.waiting import DEADLINE, until
from tests.wheelmaker import make_wheel

from .plugkit import crasher_wheel
from .test_agent import _settings, client, server

__all__ = ["client", "server"]  # the fixtures

pytestmark = pytest.mark.e2e

SICK = '''\
import logging
import os
import sys

from arcade_core import hookimpl, Metric

log = logging.getLogger(__name__)


class Plugin:
    def __init__(self, config):
        if config.get("reject"):
            raise ValueError("config 'reject' is set: this plugin refuses to start")
        self.flag = config["flag"]

    @hookimpl
    def collect(self):
        if os.path.exists(self.flag):
            print("sick: the flag file is there", file=sys.stderr, flush=True)
            log.warning("refusing to collect: %s exists", self.flag)
            raise RuntimeError("the sensor is unplugged")
        return [Metric(name="sick.ok", value=1.0)]
'''

SICK_MANIFEST = {
    "config_schema": {
        "type": "object",
        "properties": {"flag": {"type": "string"}, "reject": {"type": "boolean"}},
        "additionalProperties": False,
    },
    "interval": 0.1,
}


def _sick_wheel(directory: Path) -> Path:
    return make_wheel(directory, "sick", "1.0.0", files={"sick/__init__.py": SICK},
                      manifest=SICK_MANIFEST)


def _actual(client: ArcadeClient, name: str) -> dict[str, Any]:
    for plugin in client.agent_plugins("embedded"):
        if plugin["name"] == name and plugin["actual"] is not None:
            return dict(plugin["actual"])
    return {}


@pytest.mark.parametrize("isolation", ["inline", "process"])
async def test_a_plugin_whose_collect_raises_is_degraded_until_a_call_succeeds(
    server: ServerThread, client: ArcadeClient, tmp_path: Path, isolation: str
) -> None:
    flag = tmp_path / "unplugged"
    flag.write_text("")
    await asyncio.to_thread(client.publish, [_sick_wheel(tmp_path / "w")])
    async with Agent(_settings(tmp_path, server)) as agent:
        await agent.wait_connected(DEADLINE)
        status, body = await asyncio.to_thread(
            client.install, "embedded", "sick@1.0.0", config={"flag": str(flag)},
            isolation=isolation, wait=DEADLINE)
        assert status == 200, body
        started = time.time()
        actual = await until(
            lambda: (a := _actual(client, "sick")).get("state") == "degraded" and a,
            blocking=True, what="sick to be reported degraded")
        assert actual["error"] == "RuntimeError: the sensor is unplugged" or (
            isolation == "process" and "the sensor is unplugged" in actual["error"])
        assert actual["error_at"] is not None and actual["error_at"] >= started - 1
        assert actual["errors"] >= 3 and actual["last_collect_at"] is None
        if isolation == "process":
            assert actual["pid"] is not None and actual["pid"] > 0
            assert actual["rss"] is not None and actual["rss"] > 1024 * 1024
        else:
            assert actual["pid"] is None and actual["rss"] is None
        # The errors counter keeps being refreshed (about once a heartbeat, not per call).
        await until(lambda: _actual(client, "sick")["errors"] > actual["errors"],
                    blocking=True, what="the error count to be refreshed")
        flag.unlink()                                   # the sensor is back
        healed = await until(
            lambda: (a := _actual(client, "sick")).get("state") == "running" and a,
            blocking=True, what="sick to be running again")
        assert healed["last_collect_at"] is not None
        assert healed["error"]  # the last error stays visible, with its time
        assert healed["error_at"] is not None
        assert agent.status().plugins[0]["state"] == "running"
        # What it logged can be read through the server.
        logs = await asyncio.to_thread(client.plugin_logs, "embedded", "sick", limit=500)
        texts = [f"{line['level']} {line['text']}" for line in logs["lines"]]
        own = ("stderr sick: the flag file is there" if isolation == "process"
               else f"WARNING refusing to collect: {flag} exists")
        assert own in texts
        assert any(t.startswith("ERROR collect() failed:") and "unplugged" in t for t in texts)
        assert logs["last_seq"] == logs["lines"][-1]["seq"]
        newer = await asyncio.to_thread(client.plugin_logs, "embedded", "sick",
                                        after=logs["last_seq"])
        assert all(line["seq"] > logs["last_seq"] for line in newer["lines"])


async def test_a_process_plugin_that_keeps_crashing_ends_failed_with_its_last_error(
    server: ServerThread, client: ArcadeClient, tmp_path: Path
) -> None:
    await asyncio.to_thread(client.publish, [crasher_wheel(tmp_path / "w")])
    async with Agent(_settings(tmp_path, server, max_restarts=2)) as agent:
        await agent.wait_connected(DEADLINE)
        await asyncio.to_thread(client.install, "embedded", "crasher@1.0.0", wait=DEADLINE)
        actual = await until(
            lambda: (a := _actual(client, "crasher")).get("state") == "failed" and a,
            blocking=True, what="crasher to be reported failed")
        assert actual["restarts"] == 2
        assert "exited with code 3" in actual["error"] and actual["error_at"] is not None
        assert actual["pid"] is None


@pytest.mark.parametrize("isolation", ["inline", "process"])
async def test_a_config_the_plugin_rejects_at_start_is_failed_with_its_message(
    server: ServerThread, client: ArcadeClient, tmp_path: Path, isolation: str
) -> None:
    await asyncio.to_thread(client.publish, [_sick_wheel(tmp_path / "w")])
    async with Agent(_settings(tmp_path, server)) as agent:
        await agent.wait_connected(DEADLINE)
        status, body = await asyncio.to_thread(
            client.install, "embedded", "sick@1.0.0",
            config={"flag": "/nonexistent", "reject": True}, isolation=isolation,
            wait=DEADLINE)
        assert status == 200 and body["state"]["state"] == "failed", body
        assert "this plugin refuses to start" in body["state"]["error"]
        actual = _actual(client, "sick")
        assert actual["state"] == "failed" and "refuses to start" in actual["error"]
        logs = await asyncio.to_thread(client.plugin_logs, "embedded", "sick")
        assert any("refuses to start" in line["text"] and line["level"] == "ERROR"
                   for line in logs["lines"])


_WITH_CTRL_C = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'arcade'; runpy.run_module('arcade_core.commands', run_name='__main__')"
)


async def test_arcade_logs_follows_until_ctrl_c(
    server: ServerThread, client: ArcadeClient, tmp_path: Path
) -> None:
    flag = tmp_path / "unplugged"
    flag.write_text("")
    await asyncio.to_thread(client.publish, [_sick_wheel(tmp_path / "w")])
    async with Agent(_settings(tmp_path, server)) as agent:
        await agent.wait_connected(DEADLINE)
        await asyncio.to_thread(client.install, "embedded", "sick@1.0.0",
                                config={"flag": str(flag)}, isolation="process", wait=DEADLINE)
        env = {**os.environ, "ARCADE_TOKEN": server.admin_token, "NO_COLOR": "1",
               "XDG_CONFIG_HOME": str(tmp_path / "config")}
        # As a terminal starts it: Ctrl-C at its default. A suite run as a background job
        # (`cmd &` in a script) hands every child SIGINT ignored, and Python keeps it so.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-X", "faulthandler", "-c", _WITH_CTRL_C, "logs", "sick",
            "--agent", "embedded", "--follow", "--interval", "0.2", "--lines", "1", "--api",
            server.http_url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=env)
        try:
            assert proc.stdout is not None
            seen: list[str] = []
            async with asyncio.timeout(DEADLINE):
                while sum("sick: the flag file is there" in line for line in seen) < 3:
                    seen.append((await proc.stdout.readline()).decode())
            seqless = [line.split(" ", 1)[1] for line in seen]
            assert all(line.startswith(("stderr ", "ERROR ", "WARNING ")) for line in seqless)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                _, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
            except TimeoutError:  # seen once in CI: say where it is stuck (faulthandler)
                proc.send_signal(signal.SIGABRT)
                _, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
                pytest.fail(f"arcade logs --follow ignored Ctrl-C:\n{err.decode()[-4000:]}")
        assert proc.returncode == 0, err
        assert b"Traceback" not in err
