"""The agent's ``[log]`` settings: a rotating log file that stays bounded, and the rate at
which each plugin's output may reach it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from arcade_agent.log_settings import LogSettings, apply_log_settings
from arcade_agent.settings import AgentConfigError, AgentSettings
from arcade_core.log_rate import DEFAULT_BURST, DEFAULT_RATE, set_plugin_log_rate


@pytest.fixture(autouse=True)
def _default_rate() -> Iterator[None]:
    yield
    set_plugin_log_rate(DEFAULT_RATE, DEFAULT_BURST)


def test_log_table_from_a_config_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[log]\nfile = "~/agent.log"\nmax_bytes = "1Mi"\nbackups = 2\n'
                      "plugin_rate = 5\nplugin_burst = 50\n")
    settings = AgentSettings.load(config, env={})
    assert settings.log == LogSettings(file=Path("~/agent.log").expanduser(),
                                       max_bytes=1 << 20, backups=2, plugin_rate=5.0,
                                       plugin_burst=50)
    from_env = AgentSettings.load(env={"ARCADE_AGENT_LOG": '{"max_bytes": 65536}'})
    assert from_env.log == LogSettings(max_bytes=65536)
    assert AgentSettings().log == LogSettings()


@pytest.mark.parametrize(("table", "message"), [
    ('{"size": 1}', "unknown key 'log.size'; known keys: file, max_bytes, backups"),
    ('{"max_bytes": "10XB"}', "unknown unit 'XB'"),
    ('{"max_bytes": 100}', "'log.max_bytes' must be at least 4096 bytes"),
    ('{"backups": 0}', "'log.backups' must be at least 1"),
    ('{"backups": 1.5}', "'log.backups' = 1.5 is not a whole number"),
    ('{"plugin_rate": "fast"}', "'log.plugin_rate' must be a number of lines a second"),
    ('{"file": ""}', "'log.file' must be the path of the agent's log file"),
    ("[1]", "[log] must be a table"),
])
def test_bad_log_settings_say_what_to_fix(table: str, message: str) -> None:
    with pytest.raises(AgentConfigError) as info:
        AgentSettings.load(env={"ARCADE_AGENT_LOG": table})
    assert "environment variable ARCADE_AGENT_LOG" in str(info.value)
    assert message in str(info.value)


def test_the_log_file_rotates_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "agent.log"
    settings = LogSettings(file=path, max_bytes=8192, backups=2)
    handler = apply_log_settings(settings)
    assert handler is not None
    logger = logging.getLogger("arcade.test.rotation")
    level, logger.level = logger.level, logging.INFO
    try:
        for i in range(2000):
            logger.info("line %d of a chatty agent %s", i, "x" * 40)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        logger.level = level
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["agent.log", "agent.log.1", "agent.log.2"]
    assert sum(p.stat().st_size for p in path.parent.iterdir()) <= 3 * 8192
    assert "line 1999 of a chatty agent" in path.read_text()


def test_an_unwritable_log_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(AgentConfigError, match="cannot open the log file"):
        apply_log_settings(LogSettings(file=tmp_path / "file" / "agent.log"))
