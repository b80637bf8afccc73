"""Drift of an installed environment: files that no longer match what was installed.

An environment (:class:`arcade_core.Environment`) is immutable once built: its wheels were
unpacked with every byte checked against their ``RECORD``, and ``installer`` wrote each
wheel's installed ``RECORD`` (path, sha256, size of every file it put down, scripts after
their shebang was rewritten). :class:`Baseline` is what the agent expects to find:

* every file an installed ``RECORD`` lists, with that hash and size — only the ``RECORD`` of
  a ``*.dist-info`` that belongs to one of the environment's wheels (``arcade-env.json``)
  counts, so a planted dist-info cannot vouch for itself;
* the files nobody hashed (each ``RECORD`` itself, ``arcade-env.json``, ``pyvenv.cfg``),
  hashed when the baseline is taken (right after an install, or at the agent's start);
* the ``bin/python`` symlink and its target;
* nothing else: any other file, ``__pycache__``/``*.pyc`` included, is *added*. The agent
  never writes bytecode into environments (``sys.dont_write_bytecode`` in the agent,
  ``PYTHONDONTWRITEBYTECODE`` in plugin children), because a planted ``.pyc`` whose header
  matches its source's size and mtime would run instead of the checked source.

Two checks, both read-only and run in a worker thread by :mod:`arcade_agent.drift_watch`:
:meth:`Baseline.quick` compares ``lstat`` (size, mtime_ns, inode, ctime_ns) of every file with
the baseline's and lists every directory for added files, hashing only a file whose stat
changed (a touched but identical file is not drift; its new stat is remembered);
:meth:`Baseline.full` hashes every file. Both return the drift as ``"<path> (changed)"``,
``"(added)"``, ``"(missing)"`` strings, paths relative to the environment, at most
:data:`MAX_PATHS` of them (then ``"… and N more"``).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:
    from arcade_core import Environment

__all__ = ["MAX_PATHS", "Baseline", "take_baseline"]

#: The most drifted paths one check reports (the rest are counted).
MAX_PATHS = 20

_ENV_FILE = "arcade-env.json"
#: (size, mtime_ns, inode, ctime_ns) of a file as last seen.
_Stat = tuple[int, int, int, int]


def _stat_of(st: os.stat_result) -> _Stat:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def _digest(path: str, algorithm: str) -> str:
    """The RECORD-style digest (urlsafe base64, unpadded) of the file at ``path``."""
    with open(path, "rb") as fh:
        raw = hashlib.file_digest(fh, algorithm).digest()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@dataclass
class Baseline:
    """What one environment should hold; see the module. Not thread-safe: one check at once."""

    root: str
    #: relative path -> (algorithm, RECORD-style digest, size)
    files: dict[str, tuple[str, str, int]]
    #: relative path -> symlink target
    links: dict[str, str]
    stats: dict[str, _Stat] = field(default_factory=dict)

    def quick(self) -> list[str]:
        """The stat pass: cheap; hashes only files whose stat changed."""
        return self._check(full=False)

    def full(self) -> list[str]:
        """The hash pass: every file's bytes against its expected digest."""
        return self._check(full=True)

    def _check(self, *, full: bool) -> list[str]:
        drift: list[str] = []
        for rel, (algorithm, digest, size) in self.files.items():
            path = os.path.join(self.root, rel)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                drift.append(f"{rel} (missing)")
                continue
            seen = _stat_of(st)
            if not full and seen == self.stats.get(rel):
                continue
            if st.st_size != size or not _same(path, st, algorithm, digest):
                drift.append(f"{rel} (changed)")
            else:
                self.stats[rel] = seen  # same bytes (touched, for the stat pass)
        drift.extend(self._links())
        drift.extend(self._added())
        return _bounded(drift)

    def _links(self) -> list[str]:
        drift = []
        for rel, target in self.links.items():
            try:
                if os.readlink(os.path.join(self.root, rel)) != target:
                    drift.append(f"{rel} (changed)")
            except FileNotFoundError:
                drift.append(f"{rel} (missing)")
            except OSError:  # no longer a symlink
                drift.append(f"{rel} (changed)")
        return drift

    def _added(self) -> list[str]:
        added = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in filenames + [d for d in dirnames
                                     if os.path.islink(os.path.join(dirpath, d))]:
                rel = name if rel_dir == "." else os.path.join(rel_dir, name)
                if rel not in self.files and rel not in self.links:
                    added.append(f"{rel} (added)")
        return sorted(added)


def _same(path: str, st: os.stat_result, algorithm: str, digest: str) -> bool:
    if not stat.S_ISREG(st.st_mode):
        return False
    try:
        return _digest(path, algorithm) == digest
    except OSError:
        return False


def _bounded(drift: list[str]) -> list[str]:
    if len(drift) <= MAX_PATHS:
        return drift
    return [*drift[:MAX_PATHS], f"… and {len(drift) - MAX_PATHS} more"]


def take_baseline(env: Environment) -> tuple[Baseline, list[str]]:
    """The baseline of ``env`` and the drift already visible while taking it (a file that
    does not match its installed RECORD, a planted or missing file); blocking (hashes every
    file): run it in a thread."""
    root = os.path.realpath(env.path)
    site = os.path.relpath(env.site_packages, env.path)
    wanted = set()
    for wheel in env.wheels:
        name, version, _, _ = parse_wheel_filename(wheel.filename)
        wanted.add((canonicalize_name(name), str(version)))
    files: dict[str, tuple[str, str, int]] = {}
    unhashed = [_ENV_FILE, "pyvenv.cfg"]
    for entry in _dist_infos(Path(root) / site):
        if _project(entry.name) not in wanted:
            continue  # not one of the env's wheels: its files count as added
        record_rel = os.path.join(site, entry.name, "RECORD")
        unhashed.append(record_rel)
        files.update(_installed_record(root, site, record_rel))
    baseline = Baseline(root, files, {"bin/python": os.readlink(os.path.join(root, "bin",
                                                                           "python"))})
    for rel in unhashed:
        path = os.path.join(root, rel)
        with contextlib.suppress(FileNotFoundError):  # reported missing if listed
            st = os.lstat(path)
            files[rel] = ("sha256", _digest(path, "sha256"), st.st_size)
    return baseline, baseline.full()


def _dist_infos(site: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(site) as entries:
            return [e for e in entries if e.name.endswith(".dist-info") and e.is_dir()]
    except FileNotFoundError:
        return []


def _project(dist_info: str) -> tuple[str, str]:
    """``(canonical name, normalized version)`` of a ``name-version.dist-info`` directory."""
    name, _, version = dist_info[: -len(".dist-info")].partition("-")
    with contextlib.suppress(InvalidVersion):
        version = str(Version(version))
    return canonicalize_name(name), version


def _installed_record(root: str, site: str, record_rel: str) -> dict[str, tuple[str, str, int]]:
    """The files an installed RECORD lists (paths relative to the environment). A RECORD
    that cannot be read lists nothing: its files then show as added, and it as changed."""
    files: dict[str, tuple[str, str, int]] = {}
    try:
        with open(os.path.join(root, record_rel), encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return files
    for row in rows:
        if len(row) != 3 or not row[1]:
            continue  # RECORD itself (no hash), or a garbled line
        algorithm, _, digest = row[1].partition("=")
        if algorithm not in hashlib.algorithms_available or not row[2].isdigit():
            continue
        files[os.path.normpath(os.path.join(site, row[0]))] = (algorithm, digest, int(row[2]))
    return files
