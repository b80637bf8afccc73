"""Plugin specs as operators type them: ``name``, ``name@1.2.0``, ``name@>=1.2,<2``.

Names are normalized per PEP 503 (``Arcade_CPU`` → ``arcade-cpu``); versions and ranges are
PEP 440, parsed by :mod:`packaging`. A bare version after ``@`` means exactly that version.

Lengths are bounded before anything is parsed (names :data:`MAX_NAME_LENGTH`, a version
:data:`MAX_VERSION_LENGTH`, a whole spec :data:`MAX_SPEC_LENGTH`): besides matching the
server's columns, this keeps every number in a version far below Python's integer-string
limit (4,300 digits), which :mod:`packaging` would otherwise hit with a ``ValueError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ._exceptions import InvalidSpec

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_SPEC_LENGTH",
    "MAX_VERSION_LENGTH",
    "PluginSpec",
    "check_version_text",
    "normalize_name",
    "parse_spec",
]

#: Longest project name accepted (the server's name columns).
MAX_NAME_LENGTH = 200
#: Longest version accepted, alone or inside a range (the server's version columns).
MAX_VERSION_LENGTH = 100
#: Longest spec text accepted, ``name@range`` with its whitespace.
MAX_SPEC_LENGTH = 500

# PEP 508 project names: letters, digits, and . _ - inside, starting and ending alphanumeric.
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def normalize_name(name: str) -> str:
    """Return the PEP 503 normalized form of a project name, or raise :class:`InvalidSpec`."""
    if not isinstance(name, str):
        raise InvalidSpec(f"invalid plugin name {name!r}: expected a string")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidSpec(
            f"invalid plugin name {name[:40]!r}...: {len(name)} characters, at most "
            f"{MAX_NAME_LENGTH}"
        )
    if not _NAME.match(name):
        raise InvalidSpec(
            f"invalid plugin name {name!r}: use letters, digits, '.', '_' and '-', "
            "starting and ending with a letter or digit"
        )
    return canonicalize_name(name)


def check_version_text(text: str) -> str:
    """``text`` if it is at most :data:`MAX_VERSION_LENGTH` characters, else
    :class:`InvalidSpec` (call before :class:`~packaging.version.Version` parses it)."""
    if len(text) > MAX_VERSION_LENGTH:
        raise InvalidSpec(
            f"version {text[:40]!r}... is {len(text)} characters long; at most "
            f"{MAX_VERSION_LENGTH}"
        )
    return text


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """A parsed spec: a normalized ``name`` and a version ``specifier`` (maybe empty)."""

    name: str
    specifier: SpecifierSet

    @property
    def pinned(self) -> Version | None:
        """The exact version when the spec pins one with ``==`` (no wildcard), else ``None``."""
        specs = list(self.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            return Version(specs[0].version)
        return None

    def matches(self, version: str | Version) -> bool:
        """True when ``version`` satisfies the spec (pre-releases only when pinned, or when
        the spec itself names a pre-release such as ``>=2.0rc1``)."""
        v = version if isinstance(version, Version) else Version(version)
        # Explicit, because packaging >= 26 lets prereleases=None match pre-releases.
        prereleases = self.pinned is not None or bool(self.specifier.prereleases)
        return self.specifier.contains(v, prereleases=prereleases)

    def select(self, versions: Iterable[str | Version]) -> Version | None:
        """The highest of ``versions`` that satisfies the spec, or ``None``."""
        parsed = [v if isinstance(v, Version) else Version(v) for v in versions]
        candidates = [v for v in parsed if self.matches(v)]
        if not candidates and self.pinned is None:
            # Like pip: fall back to pre-releases only when nothing final matches.
            candidates = [v for v in parsed if self.specifier.contains(v, prereleases=True)]
        return max(candidates, default=None)

    def __str__(self) -> str:
        pinned = self.pinned
        if pinned is not None:
            return f"{self.name}@{pinned}"
        return f"{self.name}@{self.specifier}" if str(self.specifier) else self.name


def parse_spec(text: str) -> PluginSpec:
    """Parse ``name``, ``name@VERSION`` or ``name@SPECIFIERS``.

    Raises :class:`InvalidSpec` quoting the spec and saying what is wrong.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidSpec("empty plugin spec: expected 'name', 'name@1.2.0' or 'name@>=1.2,<2'")
    if len(text) > MAX_SPEC_LENGTH:
        raise InvalidSpec(
            f"invalid plugin spec {text[:40]!r}...: {len(text)} characters, at most "
            f"{MAX_SPEC_LENGTH}"
        )
    raw = text.strip()
    name, sep, version_part = raw.partition("@")
    name = name.strip()
    try:
        normalized = normalize_name(name)
    except InvalidSpec as exc:
        raise InvalidSpec(f"invalid plugin spec {text!r}: {exc}") from None
    if not sep:
        return PluginSpec(normalized, SpecifierSet())
    version_part = version_part.strip()
    if not version_part:
        raise InvalidSpec(
            f"invalid plugin spec {text!r}: nothing after '@'; "
            "give a version such as 'name@1.2.0' or a range such as 'name@>=1.2,<2'"
        )
    if version_part[0].isdigit():
        try:
            Version(check_version_text(version_part))
        except InvalidSpec as exc:
            raise InvalidSpec(f"invalid plugin spec {text[:80]!r}: {exc}") from None
        except (InvalidVersion, ValueError):
            raise InvalidSpec(
                f"invalid plugin spec {text!r}: {version_part!r} is not a PEP 440 version"
            ) from None
        return PluginSpec(normalized, SpecifierSet(f"=={version_part}"))
    try:
        specifier = SpecifierSet(version_part)
        for clause in specifier:
            check_version_text(clause.version)
    except InvalidSpec as exc:
        raise InvalidSpec(f"invalid plugin spec {text[:80]!r}: {exc}") from None
    except (InvalidSpecifier, ValueError):
        raise InvalidSpec(
            f"invalid plugin spec {text!r}: {version_part!r} is not a PEP 440 version or "
            "range (examples: '1.2.0', '>=1.2,<2', '~=1.4')"
        ) from None
    return PluginSpec(normalized, specifier)
