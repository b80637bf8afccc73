"""The agent's exceptions: one root under ArcadeError, importable where they are used."""

from __future__ import annotations

from pathlib import Path

import pytest

import arcade_agent
from arcade_agent import errors
from arcade_agent.agent import Agent
from arcade_agent.cache import WheelCache
from arcade_agent.desired import DesiredPlugin
from arcade_agent.downloader import DownloadError, HashMismatch
from arcade_agent.job_run import merge_before
from arcade_agent.settings import AgentConfigError, AgentSettings
from arcade_core import ArcadeError
from arcade_core.rpc.v1 import pb


def test_every_agent_error_is_an_agent_error_and_an_arcade_error() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.AgentError) and issubclass(cls, ArcadeError), name
    assert AgentConfigError is errors.AgentConfigError is arcade_agent.AgentConfigError
    assert DownloadError is errors.DownloadError is arcade_agent.DownloadError
    assert issubclass(HashMismatch, DownloadError)


def test_a_part_of_an_agent_that_was_not_started(tmp_path: Path) -> None:
    agent = Agent(AgentSettings(server="127.0.0.1:1", home=tmp_path))
    with pytest.raises(errors.AgentNotStarted, match="the agent is not started"):
        agent.host  # noqa: B018


def test_a_wheel_named_badly_is_refused(tmp_path: Path) -> None:
    cache = WheelCache(tmp_path / "wheels", 1 << 20)
    with pytest.raises(errors.InvalidWheelRef, match="invalid sha256 'nope'"):
        cache.partial_path("nope")


def test_a_desired_plugin_that_cannot_be_applied() -> None:
    plugin = pb.DesiredPlugin(name="cpu", version="1.0.0", config_json="[1]")
    with pytest.raises(errors.InvalidDesiredPlugin, match="config_json is not a JSON object"):
        DesiredPlugin.from_pb(plugin)
    with pytest.raises(errors.InvalidDesiredPlugin, match="lists no wheels"):
        DesiredPlugin.from_pb(pb.DesiredPlugin(name="cpu", version="1.0.0"))


def test_a_before_result_of_the_wrong_shape() -> None:
    with pytest.raises(errors.InvalidBeforeResult, match="returned a list"):
        merge_before([1], {}, {}, "/tmp")
