"""Fetch dependency wheels from a package index into a local wheelhouse.

Publishing a plugin means publishing the wheels of its dependencies too (agents install
offline). ``arcade publish --fetch-deps``, the quickstart and the test suite use this to get
those wheels with ``pip download`` once; files already in the wheelhouse are reused, so a
second call needs no network. The plugin test harness (:mod:`arcade_core.testing`) gets a
plugin's dependency wheels here too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Sequence
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from ._exceptions import ArcadeError
from .requirements import HOST_PROVIDED

__all__ = [
    "WheelhouseError",
    "default_wheelhouse",
    "dependency_wheels",
    "download_wheels",
    "requirements_of",
]


class WheelhouseError(ArcadeError):
    """A dependency wheel could not be had: ``pip download`` failed (no network, no such
    version, no wheel), or a wheel's metadata could not be read."""


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


def download_wheels(requirements: Sequence[str], dest: Path | None = None) -> list[Path]:
    """Return one wheel file for each of ``requirements`` (PEP 508 strings), fetching what the
    wheelhouse lacks.

    Only binary wheels for this interpreter are accepted (``--only-binary=:all:``) and only
    the named projects are fetched (``--no-deps``); :func:`dependency_wheels` follows their
    requirements.
    """
    dest = dest or default_wheelhouse()
    dest.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    missing: list[str] = []
    for text in requirements:
        cached = _find_cached(Requirement(text), dest)
        if cached is None:
            missing.append(text)
        elif cached not in found:
            found.append(cached)
    if missing:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--no-deps", "-d", str(dest), *missing]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise WheelhouseError(
                f"could not download wheels for {', '.join(missing)}: "
                f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'pip failed'}"
            )
        for text in missing:
            cached = _find_cached(Requirement(text), dest)
            if cached is None:
                raise WheelhouseError(f"pip download gave no wheel for {text!r}")
            if cached not in found:
                found.append(cached)
    return found


def requirements_of(wheel: Path) -> list[str]:
    """``Requires-Dist`` of ``wheel`` that apply to this interpreter, without the projects the
    plugin host provides (``arcade-fleet``, ``pluggy``) and without extras-only requirements."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            metadata_name = next(
                (n for n in archive.namelist()
                 if n.count("/") == 1 and n.endswith(".dist-info/METADATA")),
                None,
            )
            if metadata_name is None:
                raise WheelhouseError(f"{wheel} has no .dist-info/METADATA: not a wheel")
            text = archive.read(metadata_name).decode("utf-8")
    except (OSError, zipfile.BadZipFile) as exc:
        raise WheelhouseError(f"cannot read wheel {wheel}: {exc}") from None
    requirements: list[str] = []
    for line in HeaderParser().parsestr(text).get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise WheelhouseError(f"{wheel}: invalid Requires-Dist {line!r}: {exc}") from None
        if canonicalize_name(requirement.name) in HOST_PROVIDED:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        requirements.append(str(requirement))
    return requirements


def dependency_wheels(wheels: Iterable[Path], dest: Path | None = None) -> list[Path]:
    """The dependency wheels that ``wheels`` need, transitively, fetched into ``dest``.

    Reads each wheel's requirements (:func:`requirements_of`), gets a wheel for each with
    :func:`download_wheels`, then does the same for those wheels, until nothing is missing.
    Wheels already in the wheelhouse are reused, so a second run needs no network. Returns
    each dependency wheel once, in the order first needed.
    """
    result: list[Path] = []
    seen: set[str] = set()
    pending = [text for path in wheels for text in requirements_of(path)]
    while pending:
        fresh: list[str] = []
        for text in pending:
            name = canonicalize_name(Requirement(text).name)
            if name not in seen:
                seen.add(name)
                fresh.append(text)
        pending = []
        for path in download_wheels(fresh, dest) if fresh else []:
            if path not in result:
                result.append(path)
                pending.extend(requirements_of(path))
    return result
