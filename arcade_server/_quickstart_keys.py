"""The quick start's signing key and its agent's config: what it publishes is signed with a
key made once in its home (``HOME/keys/quickstart.key``, no passphrase: a local demo's key),
and its agent trusts that key's public half (``[[trust.keys]] file = ...``), so the demo runs
the way a fleet should: agents install only what a key they trust signed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["QuickstartKeyError", "agent_config", "sign_wheels", "signing_key"]


class QuickstartKeyError(Exception):
    """The quick start's key cannot be used (the message says how to start afresh)."""


def signing_key(directory: Path) -> tuple[Any, str]:
    """The quick start's signing key (``DIR/quickstart.key``, made once, without a
    passphrase: a local demo's key) and its id."""
    from arcade_core import signing

    from .cli._keys import generate_key
    from .cli._output import CommandError
    from .cli._signing import load_private_key

    if not (directory / "quickstart.key").is_file():
        generate_key("quickstart", directory)
    try:
        key = load_private_key(directory / "quickstart.key")
        raw = signing.parse_public_key((directory / "quickstart.pub").read_text(),
                                       source=str(directory / "quickstart.pub"))
    except (CommandError, OSError, signing.SigningKeyError) as exc:
        raise QuickstartKeyError(
            f"the quick start's signing key in {directory} cannot be used "
            f"({getattr(exc, 'message', exc)}); remove {directory} to make a new one"
        ) from None
    return key, signing.key_id(raw)


def sign_wheels(key: Any, paths: list[Path]) -> tuple[list[Path], dict[str, str]]:
    """The wheels to publish and the signature fields over them (see
    :func:`arcade_server.cli._signing.sign_upload`)."""
    from .cli._signing import sign_upload

    return sign_upload(key, paths)


def agent_config(interval: float, trusted_key: Path) -> str:
    """The quick start agent's TOML config: short intervals, jobs on, and the quick start's
    public key as its one trusted key (``[[trust.keys]]``)."""
    return (f"collect_interval = {interval}\ncollect_interval_override = {interval}\n"
            "reconnect_initial = 0.2\nreconnect_max = 2.0\n"
            # the quickstart agent runs jobs (`arcade run`): an agent opts in itself
            "\n[jobs]\nenabled = true\n"
            # it installs only versions signed by the quick start's key
            f"\n[[trust.keys]]\nfile = {_toml_string(str(trusted_key))}\n")


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's for these characters)."""
    import json

    return json.dumps(text)
