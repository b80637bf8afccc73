"""AgentSettings: precedence, file formats, validation messages and the persisted agent id."""

from __future__ import annotations

from pathlib import Path

import pytest

from arcade_agent.settings import (
    AgentConfigError,
    AgentSettings,
    default_agent_id,
    parse_labels,
    parse_size,
)
from arcade_core.job_policy import JobPolicy


def test_flags_override_env_which_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        'server = "files:1"\ncollect_interval = 5\ncache_max_bytes = "2MiB"\n'
        'download_concurrency = 7\n[labels]\nenv = "prod"\n'
    )
    env = {"ARCADE_AGENT_SERVER": "env:2", "ARCADE_AGENT_COLLECT_INTERVAL": "3.5"}
    settings = AgentSettings.load(config, env=env, server="flag:3", home=tmp_path, agent_id=None)
    assert settings.server == "flag:3"
    assert settings.collect_interval == 3.5
    assert settings.cache_max_bytes == 2 * 1024 * 1024
    assert settings.download_concurrency == 7
    assert settings.labels == {"env": "prod"}
    assert settings.home == tmp_path


def test_yaml_file_with_agent_section(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        "agent:\n  server: example.org:9090\n  labels:\n    role: ci\n  metric-buffer: 50\n"
    )
    settings = AgentSettings.load(config, env={})
    assert settings.server == "example.org:9090"
    assert settings.labels == {"role": "ci"}
    assert settings.metric_buffer == 50


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    config = tmp_path / "a.yml"
    config.write_text("heartbeat_interval: 2\n")
    settings = AgentSettings.load(env={"ARCADE_AGENT_CONFIG": str(config)})
    assert settings.heartbeat_interval == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colect_interval = 3\n", "unknown setting 'colect_interval' in config file"),
        ("collect_interval = -1\n", "'collect_interval' must be a positive number"),
        ('collect_interval = "soon"\n', "setting 'collect_interval' from config file"),
        ('server = "no-port"\n', "is not HOST:PORT"),
        ('cache_max_bytes = "lots"\n', "invalid size 'lots'"),
        ("download_concurrency = 0\n", "'download_concurrency' must be at least 1"),
        ("server = [\n", "is not valid toml"),
        ('agent_id = "bad id!"\n', "is not a valid agent id"),
    ],
)
def test_bad_config_file_gives_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(text)
    with pytest.raises(AgentConfigError, match=message.replace("(", r"\(")):
        AgentSettings.load(config, env={})


def test_bad_environment_variable_names_the_variable() -> None:
    with pytest.raises(AgentConfigError, match="environment variable ARCADE_AGENT_METRIC_BUFFER"):
        AgentSettings.load(env={"ARCADE_AGENT_METRIC_BUFFER": "many"})


def test_unknown_file_format_and_missing_file(tmp_path: Path) -> None:
    ini = tmp_path / "agent.ini"
    ini.write_text("x=1")
    with pytest.raises(AgentConfigError, match=r"use a \.toml, \.yaml or \.yml file"):
        AgentSettings.load(ini, env={})
    with pytest.raises(AgentConfigError, match="cannot read the config file"):
        AgentSettings.load(tmp_path / "missing.toml", env={})


def test_agent_id_is_derived_once_and_persisted(tmp_path: Path) -> None:
    first = AgentSettings(home=tmp_path / "home").resolved()
    assert first.id == default_agent_id()
    assert (tmp_path / "home" / "agent-id").read_text().strip() == first.id
    (tmp_path / "home" / "agent-id").write_text("renamed-host\n")
    assert AgentSettings(home=tmp_path / "home").resolved().id == "renamed-host"


def test_explicit_agent_id_wins_and_is_not_persisted(tmp_path: Path) -> None:
    settings = AgentSettings(home=tmp_path, agent_id="edge-7").resolved()
    assert settings.id == "edge-7"
    assert not (tmp_path / "agent-id").exists()


def test_labels_and_sizes_parse() -> None:
    assert parse_labels(["env=prod", "zone = eu-1"]) == {"env": "prod", "zone": "eu-1"}
    assert parse_labels("a=1,b=2") == {"a": "1", "b": "2"}
    with pytest.raises(AgentConfigError, match="expected KEY=VALUE"):
        parse_labels(["novalue"])
    assert parse_size("512MiB") == 512 * 1024**2
    assert parse_size("2 GB") == 2 * 1000**3
    assert parse_size(123) == 123


def test_jobs_are_off_by_default_and_turned_on_by_a_jobs_table_or_the_environment(
    tmp_path: Path,
) -> None:
    assert AgentSettings.load(env={}).job_policy == JobPolicy(False, ())
    config = tmp_path / "agent.toml"
    config.write_text('heartbeat_interval = 2\n[jobs]\nenabled = true\nallow = ["make *"]\n')
    settings = AgentSettings.load(config, env={})
    assert settings.job_policy == JobPolicy(True, ("make *",))
    nested = tmp_path / "both.toml"
    nested.write_text('[agent]\nheartbeat_interval = 2\n[jobs]\nenabled = true\n')
    assert AgentSettings.load(nested, env={}).jobs_enabled
    inside = tmp_path / "inside.yaml"
    inside.write_text("agent:\n  jobs:\n    enabled: yes\n    allow: ['pytest *']\n")
    assert AgentSettings.load(inside, env={}).job_policy == JobPolicy(True, ("pytest *",))
    from_env = AgentSettings.load(config, env={"ARCADE_AGENT_JOBS_ENABLED": "false",
                                               "ARCADE_AGENT_JOBS_ALLOW": '["a *", "b"]'})
    assert from_env.job_policy == JobPolicy(False, ("a *", "b"))
    lines = AgentSettings.load(env={"ARCADE_AGENT_JOBS_ENABLED": "1",
                                    "ARCADE_AGENT_JOBS_ALLOW": "make *\n pytest -q \n"})
    assert lines.job_policy == JobPolicy(True, ("make *", "pytest -q"))


@pytest.mark.parametrize(("text", "message"), [
    ("[jobs]\nenable = true\n", "unknown setting 'jobs.enable'; [jobs] takes enabled and allow"),
    ('jobs = "on"\n', "[jobs] must be a table"),
    ('[jobs]\nenabled = "maybe"\n', "setting 'jobs_enabled' from config file .*expected true "
                                    "or false"),
    ("[jobs]\nallow = [1]\n", "expected a list of command patterns"),
    ('[jobs]\nallow = [" "]\n', "setting 'jobs_allow'"),
])
def test_a_bad_jobs_table_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(text)
    with pytest.raises(AgentConfigError, match=message.replace("[", r"\[")):
        AgentSettings.load(config, env={})


def test_a_default_plugin_memory_limit_is_set_and_checked(tmp_path: Path) -> None:
    assert AgentSettings(home=tmp_path).plugin_memory_limit == "1Gi"
    assert AgentSettings(home=tmp_path, plugin_memory_limit="none").plugin_memory_limit == "none"
    with pytest.raises(AgentConfigError, match="plugin_memory_limit"):
        AgentSettings(home=tmp_path, plugin_memory_limit="a lot")
