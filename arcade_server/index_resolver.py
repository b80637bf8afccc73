"""Resolve a requirement on a package index into verified wheel files, with ``pip download``.

Used by the import of a plugin from an index (:mod:`arcade_server.services.imports`). For each
target :class:`~arcade_server.platforms.Platform`, ``pip download --no-deps --only-binary
=:all: --platform … --python-version … --implementation cp`` picks the best wheel of each
requirement (pip's own candidate selection, not ours), level by level: the chosen wheel's
``Requires-Dist`` are evaluated with that platform's markers and fetched next, skipping the
projects the plugin host provides (``arcade-fleet``, ``pluggy``: never fetched, so an index
without them works and the unrelated ``arcade`` on the public index is never downloaded).
pip runs as an asyncio subprocess with ``--isolated`` (no pip config or ``PIP_*`` variables:
only the given index is asked), its temp files in our work directory, whose size a watchdog
bounds while pip runs (``max_total_bytes``; each wheel at most ``max_wheel_bytes``); the whole
resolution has a deadline. Then every file is checked against the sha256 the index itself
publishes (:mod:`arcade_server.package_index`), whatever pip checked. The caller owns the work
directory and removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from arcade_core.requirements import HOST_PROVIDED

from .errors import IndexUnavailable, Invalid, PayloadTooLarge
from .package_index import ProjectPage, fetch_project, redact
from .platforms import Platform

__all__ = ["ImportLimits", "Resolver"]

_WATCH_INTERVAL = 0.2
_MAX_METADATA = 1024 * 1024
_STDERR_KEEP = 64 * 1024


@dataclass(frozen=True)
class ImportLimits:
    """Bounds of one import: its deadline (seconds), each wheel's and all files' bytes."""

    timeout: float
    max_wheel_bytes: int
    max_total_bytes: int


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _requires_dist(path: Path) -> list[str]:
    """``Requires-Dist`` of a downloaded wheel (read bounded; the publish inspects it fully)."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist()
                         if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
            if name is None:
                raise Invalid(f"{path.name} has no .dist-info/METADATA: not a wheel")
            with archive.open(name) as member:
                text = member.read(_MAX_METADATA).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile) as exc:
        raise Invalid(f"{path.name} from the index is not a readable wheel: {exc}") from None
    return HeaderParser().parsestr(text).get_all("Requires-Dist") or []


def _wanted(lines: Sequence[str], platform: Platform, extras: frozenset[str], who: str
            ) -> list[Requirement]:
    markers = platform.markers
    wanted = []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise Invalid(f"{who} has an invalid Requires-Dist {line!r}: {exc}") from None
        if canonicalize_name(req.name) in HOST_PROVIDED:
            continue  # checked against the host by the publish, never fetched
        if req.marker is None or any(req.marker.evaluate({**markers, "extra": extra})
                                     for extra in ("", *sorted(extras))):
            wanted.append(req)
    return wanted


@dataclass
class _Choice:
    path: Path
    version: Version
    extras: frozenset[str] = field(default_factory=frozenset)


class Resolver:
    """One resolution of ``requirement`` on ``index_url`` into ``workdir`` (see the module)."""

    def __init__(self, index_url: str, limits: ImportLimits, workdir: Path) -> None:
        self.index_url = index_url
        self.limits = limits
        self.workdir = workdir
        self._deadline = asyncio.get_running_loop().time() + limits.timeout
        self._pages: dict[str, ProjectPage | None] = {}

    def _remaining(self) -> float:
        left = self._deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise IndexUnavailable(f"importing from {redact(self.index_url)} took longer than "
                                   f"{self.limits.timeout:g}s (setting import_timeout)")
        return left

    async def page(self, name: str) -> ProjectPage | None:
        """The index's page of ``name`` (read once per resolution)."""
        key = canonicalize_name(name)
        if key not in self._pages:
            timeout = min(60.0, self._remaining())
            self._pages[key] = await asyncio.to_thread(fetch_project, self.index_url, key,
                                                       timeout=timeout)
        return self._pages[key]

    async def resolve(self, requirement: Requirement, platforms: Sequence[Platform]
                      ) -> list[Path]:
        """The verified wheel files of ``requirement`` and its dependencies for every one of
        ``platforms`` (each file once, the requirement's own wheels first)."""
        if await self.page(requirement.name) is None:
            raise Invalid(f"the index {redact(self.index_url)} has no project "
                          f"{canonicalize_name(requirement.name)!r}")
        files: dict[str, Path] = {}
        for number, platform in enumerate(platforms):
            dest = self.workdir / f"platform-{number}"
            dest.mkdir(parents=True)
            for path in await self._resolve_for(requirement, platform, dest):
                files.setdefault(path.name, path)
        for path in files.values():
            await self._verify(path)
        return list(files.values())

    async def _resolve_for(self, top: Requirement, platform: Platform, dest: Path
                           ) -> list[Path]:
        chosen: dict[str, _Choice] = {}
        needed_by: dict[str, str] = {canonicalize_name(top.name): "the import"}
        pending: list[tuple[Requirement, str]] = [(top, "the import")]
        while pending:
            merged: dict[str, Requirement] = {}  # by canonical name
            for req, who in pending:
                name = canonicalize_name(req.name)
                if name in chosen:
                    have = chosen[name]
                    if not req.specifier.contains(have.version, prereleases=True):
                        raise Invalid(
                            f"{who} requires {req}, but {have.path.name} was chosen for "
                            f"{needed_by[name]} ({platform.label}): the requirements conflict")
                    continue
                needed_by.setdefault(name, who)
                if name in merged:
                    old = merged[name]
                    combined = Requirement(name)
                    combined.specifier = SpecifierSet(f"{old.specifier},{req.specifier}"
                                                      .strip(","))
                    combined.extras = old.extras | req.extras
                    merged[name] = combined
                else:
                    merged[name] = req
            if not merged:
                break
            await self._download(list(merged.values()), platform, dest, needed_by)
            pending = []
            for project, req in merged.items():
                path = self._find(dest, project)
                if path is None:
                    raise Invalid(f"pip gave no wheel for {req} ({platform.label})")
                version = parse_wheel_filename(path.name)[1]
                chosen[project] = _Choice(path, version, frozenset(req.extras))
                who = path.name
                lines = await asyncio.to_thread(_requires_dist, path)
                pending.extend((dep, who) for dep in _wanted(lines, platform,
                                                             frozenset(req.extras), who))
        return [choice.path for choice in chosen.values()]

    @staticmethod
    def _find(dest: Path, name: str) -> Path | None:
        for path in sorted(dest.glob("*.whl")):
            try:
                if parse_wheel_filename(path.name)[0] == name:
                    return path
            except InvalidWheelFilename:
                continue
        return None

    def _command(self, reqs: Sequence[Requirement], platform: Platform, dest: Path
                 ) -> list[str]:
        cmd = [sys.executable, "-m", "pip", "download", "--isolated", "--no-input",
               "--no-cache-dir", "--disable-pip-version-check", "--progress-bar", "off",
               "--no-deps", "--only-binary=:all:", "--implementation", "cp",
               "--python-version", platform.python_version,
               "--index-url", self.index_url, "--dest", str(dest),
               "--timeout", f"{min(60.0, self._remaining()):.0f}", "--retries", "1"]
        for tag in platform.pip_platforms:
            cmd += ["--platform", tag]
        parts = urlsplit(self.index_url)
        if parts.scheme == "http" and parts.hostname:
            # The operator chose plain http (pip refuses it beyond loopback otherwise).
            cmd += ["--trusted-host", parts.hostname]
        return [*cmd, "--", *(str(r) for r in reqs)]

    async def _download(self, reqs: Sequence[Requirement], platform: Platform, dest: Path,
                        needed_by: dict[str, str]) -> None:
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONDONTWRITEBYTECODE": "1"}
        proc = await asyncio.create_subprocess_exec(
            *self._command(reqs, platform, dest), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
            start_new_session=True)
        assert proc.stderr is not None
        stderr = asyncio.create_task(_drain(proc.stderr))
        waiting = asyncio.create_task(proc.wait())
        try:
            while not waiting.done():
                await asyncio.wait({waiting}, timeout=min(_WATCH_INTERVAL, self._remaining()))
                self._remaining()
                used = await asyncio.to_thread(_tree_size, self.workdir)
                if used > self.limits.max_total_bytes:
                    raise PayloadTooLarge(
                        f"the wheels of {', '.join(map(str, reqs))} are over the server's "
                        f"limit of {self.limits.max_total_bytes} bytes (max_upload_bytes)",
                        {"max_upload_bytes": self.limits.max_total_bytes})
            text = (await stderr).decode("utf-8", "replace")
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await waiting
            if not stderr.done():
                stderr.cancel()
            await asyncio.gather(stderr, return_exceptions=True)
        if proc.returncode != 0:
            await self._explain(text, reqs, platform, needed_by)
        for path in dest.iterdir():
            if path.is_file() and path.stat().st_size > self.limits.max_wheel_bytes:
                raise PayloadTooLarge(
                    f"{path.name} is over the server's limit of {self.limits.max_wheel_bytes} "
                    "bytes per wheel (max_wheel_bytes)",
                    {"max_wheel_bytes": self.limits.max_wheel_bytes})

    async def _explain(self, stderr: str, reqs: Sequence[Requirement], platform: Platform,
                       needed_by: dict[str, str]) -> None:
        """Turn pip's failure into an error that says what to fix (always raises)."""
        lowered = stderr.lower()
        if "do not match the hashes" in lowered or "hash mismatch" in lowered:
            raise Invalid(
                "hash mismatch: a file the index serves does not have the sha256 the index "
                f"publishes for it; nothing was published. pip said: {_tail(stderr, 6)}")
        for req in reqs:
            name = canonicalize_name(req.name)
            if f"no matching distribution found for {str(req).lower()}" not in lowered and \
                    f"no matching distribution found for {name}" not in lowered:
                continue
            page = await self.page(name)
            who = needed_by.get(name, "the import")
            if page is None:
                raise Invalid(f"{who} requires {req}, but the index {redact(self.index_url)} "
                              f"has no project {name!r}")
            versions = page.versions(wheels_only=False)
            fitting = [v for v in versions if req.specifier.contains(v, prereleases=True)]
            if not fitting:
                have = ", ".join(map(str, versions[:10])) or "no versions"
                raise Invalid(f"no version of {name} on the index matches {req} (needed by "
                              f"{who}); the index has: {have}",
                              {"project": name, "requirement": str(req)})
            raise Invalid(
                f"{name} has no wheel for {platform.label} matching {req} (needed by {who}): "
                "every platform the agents report needs one; build and upload that wheel to "
                "the index, or publish the wheels yourself with POST /api/v1/plugins",
                {"project": name, "platform": platform.label})
        raise IndexUnavailable(f"pip download from {redact(self.index_url)} failed: "
                               f"{_tail(stderr, 4)}")

    async def _verify(self, path: Path) -> None:
        """The file has the sha256 the index publishes for it, on an http(s) URL."""
        name = parse_wheel_filename(path.name)[0]
        page = await self.page(name)
        entry = page.file(path.name) if page is not None else None
        if entry is None:
            raise Invalid(f"{path.name} is not listed on the index's page of {name}: "
                          "cannot check its hash")
        if urlsplit(entry.url).scheme not in ("http", "https"):
            raise Invalid(f"the index links {path.name} to a non-http(s) URL: refused")
        if entry.sha256 is None:
            raise Invalid(
                f"the index publishes no sha256 for {path.name}, so it cannot be verified: "
                "use an index that publishes hashes (PEP 503 #sha256= or PEP 691 hashes)")
        actual = await asyncio.to_thread(_sha256, path)
        if actual != entry.sha256:
            raise Invalid(
                f"hash mismatch: the index publishes sha256 {entry.sha256} for {path.name}, "
                f"but the file downloaded has {actual}; nothing was published",
                {"filename": path.name, "published": entry.sha256, "downloaded": actual})


async def _drain(stream: asyncio.StreamReader) -> bytes:
    """Read ``stream`` to its end, keeping the last :data:`_STDERR_KEEP` bytes."""
    kept = b""
    while chunk := await stream.read(65536):
        kept = (kept + chunk)[-_STDERR_KEEP:]
    return kept


def _tail(text: str, lines: int) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "no output"
