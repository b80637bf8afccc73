"""The agent's trust: the public keys whose signatures it accepts, and the check before an
install.

Trust lives in the agent's own config file, never on the server (a server, or a stolen
publisher token, cannot widen it)::

    [[trust.keys]]
    file = "/etc/arcade/release.pub"      # or: key = "<base64 raw public key>"
    plugins = ["arcade-*"]                 # optional; default all

The section is parsed by :func:`parse_trust` when the settings are loaded (at start, and again
on SIGHUP: :mod:`arcade_agent.service`), so a rotated ``.pub`` file is read anew. A relative
``file`` is relative to the config file's directory. Any mistake names its entry
(``trust.keys[2]``) and what to fix.

With at least one key configured, :meth:`Trust.check` runs before anything of a plugin version
is downloaded: it rebuilds the version's statement (:func:`arcade_core.signing.statement` of
its name, version and every wheel's sha256, dependencies included) and requires a valid
signature by a trusted key whose ``plugins`` patterns match the plugin's name; otherwise
:class:`~arcade_agent.errors.UntrustedPlugin` says ``not signed by a trusted key (trusted: …,
signed by: …)``. Without any key the agent installs unsigned versions (as before signing
existed): :attr:`Trust.enabled` is False.

:mod:`cryptography` is imported by the first signature check, not by this module.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcade_core.signing import Signature, SigningKeyError, key_id, parse_public_key, statement
from arcade_core.signing import verify as verify_signature

from .errors import AgentConfigError, UntrustedPlugin

__all__ = ["Trust", "TrustedKey", "parse_trust"]

_ALL = ("*",)
_SEPARATORS = re.compile(r"[-_.]+")


def _normalized(name: str) -> str:
    """PEP 503 normalization, so ``Arcade_Foo`` and ``arcade-foo`` are one name (patterns
    keep their wildcards)."""
    return _SEPARATORS.sub("-", name).lower()


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One trusted ed25519 public key (32 raw bytes), for the plugin names matching one of
    ``plugins`` (shell-style patterns; default: every plugin). ``source`` says where it was
    configured (for messages)."""

    public_key: bytes
    plugins: tuple[str, ...] = _ALL
    source: str = ""

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def covers(self, name: str) -> bool:
        """True when this key may sign plugin ``name``."""
        plugin = _normalized(name)
        return any(fnmatch.fnmatchcase(plugin, _normalized(p)) for p in self.plugins)


@dataclass(frozen=True, slots=True)
class Trust:
    """The keys an agent trusts (empty: verification is off, unsigned code runs)."""

    keys: tuple[TrustedKey, ...] = ()

    @property
    def enabled(self) -> bool:
        """True when at least one key is trusted: only signed versions install."""
        return bool(self.keys)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of the trusted keys, each once, in config order."""
        return tuple(dict.fromkeys(k.key_id for k in self.keys))

    def describe(self) -> str:
        """One line for the log: the trusted key ids, or that unsigned plugins run."""
        if not self.keys:
            return "no trusted keys: unsigned plugins run"
        return "trusted keys: " + ", ".join(self.key_ids)

    def keys_for(self, name: str) -> tuple[TrustedKey, ...]:
        """The trusted keys whose patterns cover plugin ``name``."""
        return tuple(k for k in self.keys if k.covers(name))

    def check(self, name: str, version: str, wheels: Mapping[str, str],
              signatures: Iterable[Signature]) -> str | None:
        """The trusted key id that signed ``name==version`` with exactly ``wheels``
        (filename → sha256), or None when trust is off; raises
        :class:`~arcade_agent.errors.UntrustedPlugin` when no trusted key signed it."""
        if not self.keys:
            return None
        signed = tuple(signatures)
        candidates = self.keys_for(name)
        by_id: dict[str, list[TrustedKey]] = {}
        for key in candidates:
            by_id.setdefault(key.key_id, []).append(key)
        invalid: list[str] = []
        data: bytes | None = None
        for sig in signed:
            for key in by_id.get(sig.key_id, ()):
                if data is None:
                    data = statement(name, version, wheels)
                if verify_signature(key.public_key, sig.signature, data):
                    return key.key_id
                invalid.append(sig.key_id)
        trusted = ", ".join(dict.fromkeys(k.key_id for k in candidates)) or "none"
        signers = ", ".join(dict.fromkeys(s.key_id for s in signed)) or "none"
        message = f"not signed by a trusted key (trusted: {trusted}, signed by: {signers})"
        if invalid:
            message += ("; the signature by " + ", ".join(dict.fromkeys(invalid))
                        + " does not verify for these wheels (another build, or a swapped "
                        "wheel)")
        elif not candidates:
            message += f"; no trusted key's plugins patterns match {name!r}"
        raise UntrustedPlugin(message)


# ---------------------------------------------------------------------- parsing

_ENTRY_KEYS = frozenset({"file", "key", "plugins"})


def parse_trust(value: Any, source: str, *, base: Path | None = None) -> Trust:
    """The ``[trust]`` table of a config file (``base``: its directory, for relative
    ``file`` paths), or the JSON text of ``ARCADE_AGENT_TRUST``; reads every key file.
    Raises :class:`~arcade_agent.errors.AgentConfigError` naming the entry at fault."""
    if isinstance(value, Trust):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise AgentConfigError(f"{source}: trust is not valid JSON ({exc}); expected "
                                   '{"keys": [{"file": "release.pub"}]}') from None
    if not isinstance(value, Mapping):
        raise AgentConfigError(f"{source}: [trust] must be a table with keys = [...] (write "
                               '[[trust.keys]] entries with file = "NAME.pub" or key = "...")')
    unknown = sorted(set(value) - {"keys"})
    if unknown:
        raise AgentConfigError(f"{source}: unknown setting 'trust.{unknown[0]}'; [trust] takes "
                               "keys ([[trust.keys]] entries)")
    entries = value.get("keys", [])
    if not isinstance(entries, list):
        raise AgentConfigError(f"{source}: trust.keys must be a list of tables "
                               '([[trust.keys]] with file = "NAME.pub" or key = "...")')
    return Trust(tuple(_entry(entry, f"{source}: trust.keys[{i}]", base)
                       for i, entry in enumerate(entries, 1)))


def _entry(entry: Any, where: str, base: Path | None) -> TrustedKey:
    if not isinstance(entry, Mapping):
        raise AgentConfigError(f"{where}: expected a table with file = \"NAME.pub\" or "
                               "key = \"<base64 public key>\"")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise AgentConfigError(f"{where}: unknown setting {unknown[0]!r}; an entry takes file "
                               "or key, and optionally plugins")
    if ("file" in entry) == ("key" in entry):
        raise AgentConfigError(f"{where}: give exactly one of file = \"NAME.pub\" (a file "
                               "`arcade keys generate` wrote) or key = \"<base64 public key>\"")
    try:
        if "file" in entry:
            if not isinstance(entry["file"], str) or not entry["file"].strip():
                raise AgentConfigError(f"{where}: file must be a path to a NAME.pub file")
            path = Path(entry["file"]).expanduser()
            if not path.is_absolute() and base is not None:
                path = base / path
            try:
                text = path.read_text(encoding="ascii", errors="replace")
            except OSError as exc:
                raise AgentConfigError(f"{where}: cannot read the public key file {path}: "
                                       f"{exc.strerror or exc}") from None
            public_key = parse_public_key(text, source=f"{where} (file {path})")
            origin = str(path)
        else:
            if not isinstance(entry["key"], str):
                raise AgentConfigError(f"{where}: key must be the base64 of an ed25519 public "
                                       "key (the one line of NAME.pub)")
            public_key = parse_public_key(entry["key"], source=f"{where} (key)")
            origin = "key"
    except SigningKeyError as exc:
        raise AgentConfigError(str(exc)) from None
    plugins = entry.get("plugins", list(_ALL))
    if (not isinstance(plugins, list) or not plugins
            or not all(isinstance(p, str) and p.strip() for p in plugins)):
        raise AgentConfigError(f"{where}: plugins must be a non-empty list of plugin name "
                               'patterns, e.g. ["arcade-*"] (leave it out for every plugin)')
    return TrustedKey(public_key, tuple(p.strip() for p in plugins), f"{where} ({origin})")
