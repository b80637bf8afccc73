"""Local plugins in an agent started in this event loop with no server (standalone): the
config's entries applied again (SIGHUP) change, add and remove plugins; a drifted local
plugin is repaired from its local wheels; a bad entry fails alone, saying why."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from arcade_agent import Agent, AgentSettings
from arcade_agent.local_settings import LocalPluginSpec
from arcade_core.states import PluginState
from tests.agent.plugkit import probe_wheel
from tests.waiting import until


def _states(agent: Agent) -> dict[str, tuple[str, bool, str]]:
    return {p["name"]: (p["state"], p["local"], p["error"]) for p in agent.status().plugins}


async def test_standalone_agent_applies_changes_and_repairs_local_plugins(
    tmp_path: Path,
) -> None:
    wheel = probe_wheel(tmp_path / "wheels", name="solo", metric="solo.major")
    solo = LocalPluginSpec(name="solo", wheel=wheel, key="solo", interval=0.2)
    settings = AgentSettings(home=tmp_path / "home", agent_id="solo", plugins=(solo,),
                             collect_interval=0.2)
    assert settings.standalone
    async with Agent(settings) as agent:
        assert agent.local is not None
        assert _states(agent) == {"solo": (PluginState.RUNNING, True, "")}
        await until(lambda: agent.status().metrics_sent >= 1, what="metrics logged")
        assert not agent.status().connected and agent.status().server == ""

        # SIGHUP with a new config for it, and a broken entry beside it
        bad = LocalPluginSpec(name="solo2", wheel=wheel, key="solo2")
        await agent.local.apply([dataclasses.replace(solo, config={"scale": 5}), bad])
        assert agent.host.status("solo").config == {"scale": 5}
        states = _states(agent)
        assert states["solo"][:2] == (PluginState.RUNNING, True)
        assert states["solo2"][:2] == (PluginState.FAILED, True)
        assert "the wheel holds plugin solo; name the entry plugins.solo" in states["solo2"][2]

        # drift: a file of its environment changed -> rebuilt from the local wheel
        (env,) = [e for e in agent.host.installed() if e.name == "solo"]
        module = next(env.path.rglob("solo/__init__.py"))
        module.write_text("raise SystemExit('tampered')\n")
        await agent.reconciler.repair("solo")
        assert "tampered" not in next(
            e for e in agent.host.installed() if e.name == "solo").path.joinpath(
            module.relative_to(env.path)).read_text()
        assert _states(agent)["solo"][:2] == (PluginState.RUNNING, True)

        # an entry removed from the config: unloaded, its environment deleted
        await agent.local.apply([])
        assert agent.host.plugins() == []
        assert _states(agent) == {"solo": (PluginState.REMOVED, False, "")}
        assert [e.name for e in agent.host.installed()] == []
