"""Settings precedence (flags > env > config file > defaults) and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from arcade_server.errors import SettingsError
from arcade_server.settings import Settings


def test_defaults_put_sqlite_in_home(tmp_path: Path) -> None:
    settings = Settings.load(env={}, home=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'arcade.db'}"
    assert (settings.http_port, settings.grpc_port) == (8080, 9090)
    assert (settings.http_host, settings.grpc_host) == ("127.0.0.1", "127.0.0.1")
    assert settings.http_scheme == "http"
    assert settings.agent_cert_days == 30
    assert settings.chunk_size == 512 * 1024
    assert settings.is_sqlite


def test_flags_beat_env_which_beats_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "arcade.toml"
    config.write_text(
        '[server]\nhttp_port = 7000\ngrpc_port = 7001\nmetric_retention = "2d"\n'
        'chunk_size = "1MiB"\ngrpc_host = "0.0.0.0"\nsan = ["arcade.example", "10.0.0.5"]\n'
    )
    env = {"ARCADE_SERVER_HTTP_PORT": "7100", "ARCADE_SERVER_DATABASE_URL":
           "postgresql://u@db:5432/arcade"}
    settings = Settings.load(config, env=env, http_port=7200, home=tmp_path)
    assert settings.http_port == 7200
    assert settings.grpc_port == 7001
    assert settings.grpc_host == "0.0.0.0"
    assert settings.san == ("arcade.example", "10.0.0.5")
    assert settings.metric_retention == 2 * 86400
    assert settings.chunk_size == 1024 * 1024
    assert settings.database_url == "postgresql+psycopg://u@db:5432/arcade"
    from_env_file = Settings.load(env={"ARCADE_SERVER_CONFIG": str(config)}, home=tmp_path)
    assert from_env_file.http_port == 7000


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"chunk_size": "64KiB"}, "chunk_size"),
        ({"http_port": "70000"}, "http_port"),
        ({"http_port": "eighty"}, "expected an integer"),
        ({"offline_after": "5s", "heartbeat_interval": "10s"}, "offline_after"),
        ({"metric_retention": "soon"}, "not a duration"),
        ({"database_url": "mysql://x"}, "not supported"),
        ({"colour": "blue"}, "unknown setting 'colour'"),
        ({"log_level": "loud"}, "log_level"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(
    tmp_path: Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.load(env={}, home=tmp_path, **values)


def test_bad_config_files_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        Settings.load(tmp_path / "missing.toml", env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("http_port = = 1\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        Settings.load(broken, env={})
