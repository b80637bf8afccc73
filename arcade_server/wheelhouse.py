"""Fetch dependency wheels from a package index into a local wheelhouse.

Publishing a plugin means publishing the wheels of its dependencies too (agents install
offline). ``arcade publish --fetch-deps``, the quickstart and the test suite use this to get
those wheels with ``pip download`` once; files already in the wheelhouse are reused, so a
second call needs no network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

__all__ = ["WheelhouseError", "default_wheelhouse", "download_wheels"]


class WheelhouseError(RuntimeError):
    """``pip download`` could not provide a wheel (no network, no such version, no wheel)."""


def default_wheelhouse() -> Path:
    """``$ARCADE_WHEELHOUSE``, else ``~/.cache/arcade/wheelhouse``."""
    env = os.environ.get("ARCADE_WHEELHOUSE")
    return Path(env) if env else Path.home() / ".cache" / "arcade" / "wheelhouse"


def _find_cached(requirement: Requirement, dest: Path) -> Path | None:
    name = canonicalize_name(requirement.name)
    best: tuple[object, Path] | None = None
    for path in dest.glob("*.whl"):
        try:
            wname, version, _, _ = parse_wheel_filename(path.name)
        except ValueError:
            continue
        matches = wname == name and requirement.specifier.contains(version, prereleases=True)
        if matches and (best is None or version > best[0]):  # type: ignore[operator]
            best = (version, path)
    return best[1] if best else None


def download_wheels(
    requirements: Sequence[str], dest: Path | None = None, *, deps: bool = False
) -> list[Path]:
    """Return wheel files for ``requirements`` (PEP 508 strings), downloading what is missing.

    Only binary wheels are accepted (``--only-binary=:all:``), for this interpreter. With
    ``deps=False`` just the named projects are fetched; with ``deps=True`` pip resolves their
    dependencies too and every downloaded wheel is returned.
    """
    dest = dest or default_wheelhouse()
    dest.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    missing: list[str] = []
    for text in requirements:
        cached = None if deps else _find_cached(Requirement(text), dest)
        if cached is None:
            missing.append(text)
        else:
            found.append(cached)
    if missing:
        before = set(dest.glob("*.whl"))
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "-d", str(dest), *([] if deps else ["--no-deps"]), *missing]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise WheelhouseError(
                f"could not download wheels for {', '.join(missing)}: "
                f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'pip failed'}"
            )
        if deps:
            found.extend(sorted(set(dest.glob("*.whl")) - before))
        for text in missing:
            cached = _find_cached(Requirement(text), dest)
            if cached is None:
                raise WheelhouseError(f"pip download gave no wheel for {text!r}")
            if cached not in found:
                found.append(cached)
    return found
