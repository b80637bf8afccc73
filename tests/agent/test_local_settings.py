"""``plugins:`` in the agent's own config (arcade_agent.local_settings): built-ins by name,
local wheels, and a message naming the entry and the fix for every mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcade_agent.errors import AgentConfigError
from arcade_agent.local_settings import LocalPluginSpec
from arcade_agent.settings import DEFAULT_SERVER, AgentSettings
from arcade_core.states import Isolation
from tests.agent.plugkit import probe_wheel


def _load(tmp_path: Path, text: str, suffix: str = ".yaml") -> AgentSettings:
    path = tmp_path / f"agent{suffix}"
    path.write_text(text)
    return AgentSettings.load(path, env={})


def test_yaml_declares_a_builtin_and_a_local_wheel(tmp_path: Path) -> None:
    wheel = probe_wheel(tmp_path / "wheels", name="custom")
    settings = _load(tmp_path, f"""
plugins:
  cpu:    {{enabled: true, interval: 60}}
  custom: {{wheel: wheels/{wheel.name}, config: {{scale: 2}}, isolation: process}}
""")
    cpu, custom = settings.plugins
    assert cpu == LocalPluginSpec(name="arcade-cpu", interval=60.0, key="cpu")
    assert cpu.builtin and cpu.describe() == "plugins.cpu (built-in arcade-cpu)"
    assert custom.name == "custom" and custom.wheel == wheel  # relative to the config file
    assert (custom.config, custom.isolation, custom.enabled) == ({"scale": 2},
                                                                 Isolation.PROCESS, True)
    # No server configured and local plugins: standalone.
    assert settings.server is None and settings.standalone


def test_toml_tables_and_the_environment_variable(tmp_path: Path) -> None:
    settings = _load(tmp_path, """
server = "127.0.0.1:9191"
[plugins.arcade-memory]
enabled = false
""", ".toml")
    (memory,) = settings.plugins
    assert (memory.name, memory.enabled) == ("arcade-memory", False)
    assert not settings.standalone and settings.server_address == "127.0.0.1:9191"
    from_env = AgentSettings.load(env={"ARCADE_AGENT_PLUGINS": json.dumps({"memory": {}})})
    assert [p.name for p in from_env.plugins] == ["arcade-memory"]


def test_no_server_and_no_plugins_keeps_the_default_server() -> None:
    settings = AgentSettings()
    assert not settings.standalone and settings.server_address == DEFAULT_SERVER


@pytest.mark.parametrize(("entry", "message"), [
    ("cpu: {intervall: 5}", "plugins.cpu: unknown key(s) intervall; an entry takes enabled, "
                            "interval, config, isolation, wheel"),
    ("gpu: {}", "plugins.gpu: no built-in plugin named 'gpu' (the built-ins are cpu, "
                "loadavg, memory,"),
    ("cpu: {interval: 0}", "plugins.cpu.interval = 0: expected a number of seconds > 0"),
    ("cpu: {interval: fast}", "plugins.cpu.interval = 'fast': expected a number of seconds"),
    ("cpu: {enabled: maybe}", "plugins.cpu.enabled = 'maybe': expected true or false"),
    ("cpu: {config: [1]}", "plugins.cpu.config must be a mapping"),
    ("cpu: {isolation: exec}", "plugins.cpu.isolation = 'exec': expected inline or process"),
    ("cpu: 5", "plugins.cpu must be a mapping"),
    ("x: {wheel: /nowhere/x-1.0-py3-none-any.whl}",
     "plugins.x.wheel: /nowhere/x-1.0-py3-none-any.whl does not exist; give the path"),
    ("cpu: {}\n  arcade-cpu: {}", "plugins.arcade-cpu: plugin arcade-cpu is already declared "
                                  "as plugins.cpu; keep one entry"),
])
def test_mistakes_name_the_entry_and_the_fix(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(AgentConfigError) as caught:
        _load(tmp_path, f"plugins:\n  {entry}\n")
    assert str(caught.value).startswith(f"config file {tmp_path / 'agent.yaml'}: {message}")


def test_plugins_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match="plugins must be a mapping of plugin name"):
        _load(tmp_path, "plugins: [cpu]\n")
    with pytest.raises(AgentConfigError, match="plugins must be a JSON object"):
        AgentSettings.load(env={"ARCADE_AGENT_PLUGINS": "cpu"})
