"""Wheel inspection: what a wheel is and whether it is safe, read without running its code.

The registry calls :func:`inspect_wheel` when a plugin is published and the agent calls it
again before installing, so a hostile or broken wheel is refused twice, each time with a
message that says what is wrong and which file is to blame. Nothing in a wheel is imported
or executed here: the zip is read (:mod:`arcade_core._archive`), its ``.dist-info`` files
are parsed and every member is hashed against ``RECORD`` (:mod:`arcade_core._record`).

Checks, in the order they run (each refusal is an :class:`InvalidWheel` naming the wheel;
the rules themselves are in :mod:`arcade_core._rules`):

* the file: exists, is not larger than :attr:`WheelLimits.max_wheel_bytes`, has the
  expected sha256 (when one is given), has a valid wheel filename, is a readable zip;
* every member: a safe relative name (no absolute path, drive letter, backslash or ``..``:
  "zip slip"), not a symlink or other special file, not encrypted, compressed with deflate or
  stored, and not over the zip-bomb limits (file count, declared sizes, compression ratio);
* ``.dist-info``: exactly one, matching the filename; ``METADATA`` with ``Name`` and
  ``Version`` that match the filename; ``WHEEL`` version 1.x; a tag and ``Requires-Python``
  that this interpreter supports;
* ``RECORD``: present, listing every member with a sha256-or-stronger hash and the right
  size; every member's content matches (reading stops as soon as a member yields more bytes
  than declared, so a lying header cannot make us inflate a bomb);
* ``entry_points.txt``: for a plugin, exactly one entry point in group ``arcade.plugins``,
  naming a module that is in the wheel; the optional manifest next to that module must be
  valid (see :mod:`arcade_core._manifest`).

:func:`arcade_core.requirements.check_requirements` then resolves a plugin's
``Requires-Dist`` among the dependency wheels published with it.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from . import _rules
from ._archive import Refuse, read_member, sha256_of, text_of, verify_member
from ._exceptions import InvalidWheel
from ._manifest import MANIFEST_FILENAME, Manifest
from ._record import RecordEntry
from ._wheel import DEFAULT_LIMITS, EntryPoint, WheelInfo, WheelLimits

__all__ = ["OpenWheel", "inspect_wheel", "open_wheel"]


@dataclass
class OpenWheel:
    """An inspected wheel whose zip is still open, so installing reads the same bytes."""

    info: WheelInfo
    zf: zipfile.ZipFile
    dist_info: str
    data_dir: str
    root_is_purelib: bool
    entry_points: tuple[EntryPoint, ...]
    #: member name -> (hash algorithm, urlsafe-b64 digest, size)
    records: dict[str, RecordEntry]


def _inspect_zip(
    zf: zipfile.ZipFile,
    path: Path,
    filename: str,
    sha256: str,
    size: int,
    *,
    plugin: bool,
    limits: WheelLimits,
    verify_contents: bool,
    check_compatibility: bool,
    check_schema: bool,
) -> OpenWheel:
    refuse = Refuse(filename)
    try:
        wname, wversion, _build, wtags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise refuse(f"not a valid wheel filename ({exc})") from None

    members = _rules.check_archive(zf.infolist(), size, refuse, limits)
    dist_info = _rules.dist_info_dir(members, wname, wversion, refuse)
    stem_parts = filename[: -len(".whl")].split("-")
    data_dir = f"{stem_parts[0]}-{stem_parts[1]}.data"

    def read_dist_info(leaf: str) -> str | None:
        zi = members.get(f"{dist_info}/{leaf}")
        if zi is None:
            return None
        return text_of(read_member(zf, zi, refuse, limits.max_metadata_bytes), leaf, refuse)

    def require_dist_info(leaf: str) -> str:
        text = read_dist_info(leaf)
        if text is None:
            raise refuse(f"has no {dist_info}/{leaf}")
        return text

    metadata, version, requires_dist, requires_python = _rules.check_metadata(
        require_dist_info("METADATA"), wname, wversion, refuse
    )
    root_is_purelib = _rules.check_wheel_file(require_dist_info("WHEEL"), refuse)
    if check_compatibility:
        _rules.check_compatibility(wtags, requires_python, refuse)
    records = _rules.check_record(require_dist_info("RECORD"), members, dist_info, refuse)
    if verify_contents:
        for name, entry in records.items():
            verify_member(zf, members[name], entry, refuse)

    ep_text = read_dist_info("entry_points.txt")
    entry_points = _rules.plugin_entry_points(ep_text, refuse) if ep_text is not None else []
    entry_point = _rules.plugin_entry_point(entry_points, plugin=plugin, refuse=refuse)

    manifest: Manifest | None = None
    if entry_point is not None:
        module_dir = _rules.module_dir(set(members), entry_point.module, data_dir)
        if module_dir is None:
            raise refuse(
                f"entry point '{entry_point}' names module {entry_point.module!r}, which is not "
                "in the wheel"
            )
        manifest_name = f"{module_dir}/{MANIFEST_FILENAME}" if module_dir else MANIFEST_FILENAME
        manifest_zi = members.get(manifest_name)
        if manifest_zi is not None:
            data = read_member(zf, manifest_zi, refuse, limits.max_metadata_bytes)
            try:
                manifest = Manifest.from_json(data, check_schema=check_schema)
            except InvalidWheel as exc:
                raise refuse(f"{manifest_name}: {exc}") from None

    info = WheelInfo(
        path=path,
        filename=filename,
        name=str(wname),
        version=str(version),
        summary=(metadata.get("Summary") or "").strip(),
        requires_dist=requires_dist,
        requires_python=requires_python,
        tags=frozenset(str(t) for t in wtags),
        entry_point=entry_point,
        manifest=manifest,
        sha256=sha256,
        size=size,
    )
    return OpenWheel(
        info=info,
        zf=zf,
        dist_info=dist_info,
        data_dir=data_dir,
        root_is_purelib=root_is_purelib,
        entry_points=tuple(entry_points),
        records=records,
    )


@contextlib.contextmanager
def open_wheel(
    path: str | os.PathLike[str],
    *,
    plugin: bool,
    expected_sha256: str | None,
    limits: WheelLimits,
    verify_contents: bool,
    check_compatibility: bool,
    filename: str | None = None,
    check_schema: bool = True,
) -> Iterator[OpenWheel]:
    """Inspect a wheel and keep it open (same file handle) for the caller, e.g. to unpack it.

    ``verify_contents=False`` skips hashing the members (the installer verifies each one
    while unpacking it, in one pass); everything else is checked as by :func:`inspect_wheel`.
    """
    p = Path(path)
    name = filename or p.name
    refuse = Refuse(name)
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed by the ExitStack below
    except FileNotFoundError:
        raise InvalidWheel(f"{name}: no such file {str(p)!r}") from None
    except OSError as exc:
        raise InvalidWheel(f"{name}: cannot be read: {exc.strerror or exc}") from None
    with contextlib.ExitStack() as stack:
        stack.enter_context(fh)
        size = os.fstat(fh.fileno()).st_size
        if size > limits.max_wheel_bytes:
            raise refuse(f"is {size} bytes, over the limit of {limits.max_wheel_bytes}")
        sha256 = sha256_of(fh)
        if expected_sha256 is not None and sha256 != expected_sha256.lower():
            raise refuse(f"sha256 mismatch: expected {expected_sha256}, got {sha256}")
        if not name.endswith(".whl"):
            raise refuse("not a valid wheel filename (it must end with '.whl')")
        try:
            parse_wheel_filename(name)
        except InvalidWheelFilename as exc:
            raise refuse(f"not a valid wheel filename ({exc})") from None
        try:
            zf = stack.enter_context(zipfile.ZipFile(fh))
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
            raise refuse(f"not a zip file or a corrupt one ({exc})") from None
        zf.filename = name if filename else str(p)
        yield _inspect_zip(
            zf,
            p,
            name,
            sha256,
            size,
            plugin=plugin,
            limits=limits,
            verify_contents=verify_contents,
            check_compatibility=check_compatibility,
            check_schema=check_schema,
        )


def inspect_wheel(
    path: str | os.PathLike[str],
    *,
    plugin: bool = True,
    expected_sha256: str | None = None,
    limits: WheelLimits = DEFAULT_LIMITS,
    check_compatibility: bool = True,
    filename: str | None = None,
) -> WheelInfo:
    """Inspect and verify the wheel at ``path`` without importing or running any of it.

    ``plugin=True`` requires exactly one entry point in group ``arcade.plugins``;
    ``plugin=False`` (a dependency wheel) allows none (a single one is still reported).
    ``expected_sha256`` (hex) refuses a file with another digest. ``check_compatibility=False``
    skips the wheel-tag and ``Requires-Python`` checks (e.g. a registry accepting wheels for
    other platforms). ``filename`` gives the wheel's real name when ``path`` is stored under
    another one (a content-addressed cache). Raises :class:`InvalidWheel` saying why.
    """
    with open_wheel(
        path,
        plugin=plugin,
        expected_sha256=expected_sha256,
        limits=limits,
        verify_contents=True,
        check_compatibility=check_compatibility,
        filename=filename,
    ) as opened:
        return opened.info
