"""``arcade logs`` against a real server and a protocol-level agent: the lines printed, the
JSON, and errors as one line that says what to do."""

from __future__ import annotations

import asyncio
import json

from arcade_core.rpc.v1 import pb
from arcade_server.runner import ServerThread
from tests.server.helpers import ProtocolAgent
from tests.server.test_cli import Arcade, _wide_terminal, arcade, run

__all__ = ["_wide_terminal", "arcade", "run"]  # the fixtures


async def _answer(agent: ProtocolAgent, *lines: pb.LogLine) -> pb.LogsRequest:
    while True:
        message = await agent.recv()
        if message.WhichOneof("body") == "logs_request":
            request = message.logs_request
            agent.send(pb.AgentMessage(logs=pb.PluginLogs(
                request_id=request.request_id, plugin=request.plugin,
                last_seq=max((line.seq for line in lines), default=0), lines=list(lines))))
            return request


async def test_logs_prints_the_lines_and_json(arcade: Arcade, server: ServerThread) -> None:
    agent = ProtocolAgent(server)
    await agent.connect()
    lines = (pb.LogLine(seq=7, time=1700000000.0, level="stderr", text="disk is gone"),
             pb.LogLine(seq=8, time=1700000001.0, level="ERROR", text="collect() failed"))
    try:
        answered = asyncio.ensure_future(_answer(agent, *lines))
        code, out, err = await asyncio.to_thread(
            arcade, "logs", "sick", "--agent", agent.agent_id, "-n", "2", "--after", "6")
        request = await answered
        assert code == 0, err
        assert (request.plugin, request.after, request.limit) == ("sick", 6, 2)
        printed = out.splitlines()
        assert printed[0].endswith(" stderr  disk is gone")
        assert printed[1].endswith(" ERROR   collect() failed")
        answered = asyncio.ensure_future(_answer(agent))
        code, out, _ = await asyncio.to_thread(
            arcade, "logs", "sick", "--agent", agent.agent_id, "--json")
        await answered
        assert code == 0 and json.loads(out) == {"agent": agent.agent_id, "plugin": "sick",
                                                 "last_seq": 0, "lines": []}
        answered = asyncio.ensure_future(_answer(agent))
        code, out, _ = await asyncio.to_thread(arcade, "logs", "sick", "--agent",
                                               agent.agent_id)
        await answered
        assert code == 0 and out.startswith("no lines logged by sick")
    finally:
        await agent.close()


def test_logs_errors_are_one_line(arcade: Arcade) -> None:
    code, _, err = arcade("logs", "sick", "--agent", "nobody")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "nobody" in err
    code, _, err = arcade("logs", "sick", "--agent", "x", "--lines", "0")
    assert code == 2 and "--lines" in err
