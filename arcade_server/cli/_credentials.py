"""Where the operator commands find the server and their token, the usual way.

The API URL: ``--api``, then ``$ARCADE_API``, then the credentials file, then
``http://127.0.0.1:8080``. The token: ``--token``, then ``$ARCADE_TOKEN``, then the
credentials file. The CA certificate an HTTPS server is trusted by: ``--ca-file``, then
``$ARCADE_CA_FILE``, then the credentials file (else the system's CAs).

The credentials file is ``$XDG_CONFIG_HOME/arcade/credentials`` (default
``~/.config/arcade/credentials``), a small TOML file with ``api``, ``token`` and ``ca_file``
that ``arcade login`` writes (mode 0600, atomically). A file others may read is used, with a
warning.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ._output import fail

__all__ = ["Credentials", "credentials_path", "load_file", "resolve", "save"]

DEFAULT_API = "http://127.0.0.1:8080"  # the client's default, without importing it


@dataclass(frozen=True)
class Credentials:
    """What a command connects with (each may be unset)."""

    api: str | None = None
    token: str | None = None
    ca_file: str | None = None


def credentials_path() -> Path:
    """``$XDG_CONFIG_HOME/arcade/credentials`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "arcade" / "credentials"


def load_file(path: Path | None = None) -> Credentials:
    """The credentials file's values (empty when there is none); a broken file → error."""
    path = path or credentials_path()
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except FileNotFoundError:
        return Credentials()
    except OSError as exc:
        fail(f"cannot read the credentials file {path}: {exc.strerror or exc}")
    import tomllib  # only when there is a file to read

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        fail(f"the credentials file {path} is not valid TOML ({exc}); run arcade login again")
    if mode & 0o077:
        sys.stderr.write(f"warning: {path} is readable by other users; "
                         f"run: chmod 600 {path}\n")
    values = {key: data.get(key) for key in ("api", "token", "ca_file")}
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            fail(f"the credentials file {path}: {key} must be a string")
    return Credentials(**values)


def resolve(args: argparse.Namespace) -> Credentials:
    """The API URL, token and CA file for a command (see the module docstring)."""
    env = os.environ
    stored = load_file()
    return Credentials(
        api=getattr(args, "api", None) or env.get("ARCADE_API") or stored.api or DEFAULT_API,
        token=getattr(args, "token", None) or env.get("ARCADE_TOKEN") or stored.token,
        ca_file=getattr(args, "ca_file", None) or env.get("ARCADE_CA_FILE") or stored.ca_file,
    )


def save(credentials: Credentials, path: Path | None = None) -> Path:
    """Write ``credentials`` to the credentials file (0600, atomically); return its path."""
    from arcade_core.files import write_private

    path = path or credentials_path()
    lines = ["# written by arcade login"]
    for key in ("api", "token", "ca_file"):
        value = getattr(credentials, key)
        if value is not None:
            lines.append(f"{key} = {json.dumps(value)}")  # a JSON string is a TOML string
    write_private(path, "\n".join(lines) + "\n")
    return path
