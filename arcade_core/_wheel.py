"""Wheel inspection: what a wheel is and whether it is safe, read without running its code.

The registry calls :func:`inspect_wheel` when a plugin is published and the agent calls it
again before installing, so a hostile or broken wheel is refused twice, each time with a
message that says what is wrong and which file is to blame. Nothing in a wheel is imported
or executed here: the zip is read, its ``.dist-info`` files are parsed and every member is
hashed against ``RECORD``.

Checks, in the order they run (each refusal is an :class:`InvalidWheel` naming the wheel):

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

:func:`check_requirements` then resolves a plugin's ``Requires-Dist`` among the dependency
wheels published with it, offline; ``arcade`` and ``pluggy`` are provided by the host.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import csv
import email.parser
import hashlib
import os
import platform
import re
import stat
import sys
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, sys_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ._exceptions import InstallError, InvalidWheel
from ._manifest import MANIFEST_FILENAME, Manifest

__all__ = [
    "DEFAULT_LIMITS",
    "HOST_PROVIDED",
    "PLUGIN_GROUP",
    "EntryPoint",
    "WheelInfo",
    "WheelLimits",
    "check_requirements",
    "inspect_wheel",
]

PLUGIN_GROUP = "arcade.plugins"
HOST_PROVIDED: frozenset[str] = frozenset({"arcade", "arcade-fleet", "pluggy"})

_MiB = 1024 * 1024
_CHUNK = 256 * 1024
# PEP 427: RECORD hashes must be sha256 or stronger; md5 and sha1 are refused.
_RECORD_HASHES = frozenset({"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512",
                            "blake2b", "blake2s"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_ENTRY_VALUE = re.compile(
    r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*"
    r"(?::\s*(?P<attr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*))?\s*"
    r"(?:\[[^\]]*\])?\s*$"
)
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")


@dataclass(frozen=True)
class EntryPoint:
    """An entry point such as ``cpu = arcade_cpu:Cpu`` (``attr`` is ``None`` for a module)."""

    name: str
    module: str
    attr: str | None

    @property
    def value(self) -> str:
        """The entry point as written after ``=``: ``module:attr`` or ``module``."""
        return f"{self.module}:{self.attr}" if self.attr else self.module

    @classmethod
    def parse(cls, name: str, value: str) -> EntryPoint:
        """Parse ``module``, ``module:attr`` or ``module:attr [extras]``; ``ValueError`` if bad."""
        match = _ENTRY_VALUE.match(value.strip())
        if not name.strip() or match is None:
            raise ValueError(
                f"entry point {name.strip()} = {value.strip()!r} is not of the form "
                "'name = package.module:Class' (or 'name = package.module')"
            )
        return cls(name.strip(), match["module"], match["attr"])

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"


@dataclass(frozen=True)
class WheelLimits:
    """Zip-bomb and abuse limits applied before and while a wheel is read.

    The defaults fit any real wheel (numpy, torch-sized wheels need larger ``max_wheel_bytes``
    and ``max_uncompressed_bytes``); tighten them for untrusted uploads or loosen them per call.
    ``max_ratio`` applies to every member of at least ``ratio_min_bytes`` uncompressed bytes
    (tiny files compress erratically) and to the archive as a whole.
    """

    max_wheel_bytes: int = 512 * _MiB
    max_files: int = 20_000
    max_uncompressed_bytes: int = 2048 * _MiB
    max_ratio: float = 200.0
    max_member_bytes: int = 512 * _MiB
    max_metadata_bytes: int = 8 * _MiB
    ratio_min_bytes: int = 1 * _MiB


DEFAULT_LIMITS = WheelLimits()


@dataclass(frozen=True)
class WheelInfo:
    """What :func:`inspect_wheel` learnt about one wheel. ``name`` is PEP 503 normalized,
    ``version`` PEP 440 normalized, ``tags`` like ``{"py3-none-any"}``; ``entry_point`` and
    ``manifest`` are set for a plugin wheel (``manifest`` is ``None`` when it ships none)."""

    path: Path
    filename: str
    name: str
    version: str
    summary: str
    requires_dist: tuple[str, ...]
    requires_python: str | None
    tags: frozenset[str]
    entry_point: EntryPoint | None
    manifest: Manifest | None
    sha256: str
    size: int

    @property
    def is_plugin(self) -> bool:
        """True when the wheel declares exactly one ``arcade.plugins`` entry point."""
        return self.entry_point is not None

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


# ---------------------------------------------------------------------------------------------
# Interpreter compatibility


@cache
def _supported_tags() -> frozenset[str]:
    # ~25 ms (manylinux/glibc probing), so computed once per process and only when needed.
    return frozenset(str(tag) for tag in sys_tags())


def _pure_tags() -> frozenset[str]:
    """The ``*-none-any`` tags this interpreter supports, without probing the platform."""
    major, minor = sys.version_info[:2]
    interpreters = {f"py{major}", f"cp{major}{minor}"} | {f"py{major}{m}" for m in range(minor + 1)}
    return frozenset(f"{i}-none-any" for i in interpreters)


def _tag_supported(tags: frozenset[Tag]) -> bool:
    names = {str(t) for t in tags}
    return bool(names & _pure_tags()) or bool(names & _supported_tags())


def _python_version() -> str:
    return platform.python_version()


# ---------------------------------------------------------------------------------------------
# Reading the archive


@dataclass
class _OpenWheel:
    """An inspected wheel whose zip is still open, so installing reads the same bytes."""

    info: WheelInfo
    zf: zipfile.ZipFile
    dist_info: str
    data_dir: str
    root_is_purelib: bool
    entry_points: tuple[EntryPoint, ...]
    # member name -> (hash algorithm, urlsafe-b64 digest, size)
    records: dict[str, tuple[str, str, int]]


class _Refuse:
    """Builds :class:`InvalidWheel` errors that all start with the wheel's filename."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def __call__(self, reason: str) -> InvalidWheel:
        return InvalidWheel(f"{self.filename}: {reason}")


def _sha256_of(fh: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := fh.read(_MiB):
        digest.update(chunk)
    fh.seek(0)
    return digest.hexdigest()


def _check_member(zi: zipfile.ZipInfo, refuse: _Refuse, limits: WheelLimits) -> None:
    name = zi.filename
    if not name or "\x00" in name:
        raise refuse(f"member name {name!r} is empty or contains a NUL byte")
    if "\\" in name:
        raise refuse(f"member {name!r} contains a backslash; wheel paths use '/' only")
    if name.startswith("/"):
        raise refuse(f"member {name!r} is an absolute path; wheel members must be relative")
    if _DRIVE.match(name):
        raise refuse(f"member {name!r} starts with a drive letter; wheel members must be relative")
    if ".." in name.split("/"):
        raise refuse(f"member {name!r} contains '..' (path traversal outside the install dir)")
    mode = zi.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise refuse(f"member {name!r} is a symlink; wheels may contain regular files only")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise refuse(f"member {name!r} is a special file (mode {oct(mode)}); regular files only")
    if zi.flag_bits & 0x1:
        raise refuse(f"member {name!r} is encrypted")
    if zi.is_dir():
        return
    if zi.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise refuse(
            f"member {name!r} uses zip compression method {zi.compress_type}; "
            "wheels must be deflated or stored"
        )
    if zi.file_size > limits.max_member_bytes:
        raise refuse(
            f"member {name!r} declares {zi.file_size} bytes uncompressed, over the limit of "
            f"{limits.max_member_bytes} (zip bomb?)"
        )
    if zi.file_size >= limits.ratio_min_bytes and zi.file_size > limits.max_ratio * max(
        zi.compress_size, 1
    ):
        ratio = zi.file_size / max(zi.compress_size, 1)
        raise refuse(
            f"member {name!r} has a compression ratio of {ratio:.0f}:1, over the limit of "
            f"{limits.max_ratio:.0f}:1 (zip bomb?)"
        )


def _iter_member(zf: zipfile.ZipFile, zi: zipfile.ZipInfo, refuse: _Refuse) -> Iterator[bytes]:
    """A member's bytes in chunks; refused as soon as it yields more than it declared."""
    total = 0
    try:
        with zf.open(zi) as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                if total > zi.file_size:
                    raise refuse(f"member {zi.filename!r} inflates past its declared size")
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise refuse(f"member {zi.filename!r} is corrupt: {exc}") from None


def _read_member(zf: zipfile.ZipFile, zi: zipfile.ZipInfo, refuse: _Refuse, limit: int) -> bytes:
    """Read one small member (metadata, manifest), refusing it when over ``limit``."""
    if zi.file_size > limit:
        raise refuse(f"{zi.filename} is {zi.file_size} bytes, over the limit of {limit}")
    return b"".join(_iter_member(zf, zi, refuse))


def _verify_member(
    zf: zipfile.ZipFile, zi: zipfile.ZipInfo, algorithm: str, digest: str, refuse: _Refuse
) -> None:
    """Hash a member's content and compare it with its RECORD entry."""
    hasher = hashlib.new(algorithm)
    for chunk in _iter_member(zf, zi, refuse):
        hasher.update(chunk)
    if _b64_digest(hasher) != digest:
        raise refuse(
            f"{zi.filename!r} does not match its RECORD hash (the file was changed after the "
            "wheel was built)"
        )


def _text(data: bytes, what: str, refuse: _Refuse) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse(f"{what} is not UTF-8 text") from None


def _parse_record(text: str, refuse: _Refuse) -> dict[str, tuple[str, str, int] | None]:
    rows: dict[str, tuple[str, str, int] | None] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row:
            continue
        if len(row) != 3:
            raise refuse(f"RECORD line {number} has {len(row)} fields; expected path,hash,size")
        path, hash_text, size_text = row
        if not hash_text and not size_text:
            rows[path] = None
            continue
        algorithm, sep, digest = hash_text.partition("=")
        if not sep or not digest:
            raise refuse(f"RECORD line {number} ({path}): hash {hash_text!r} is not 'algo=digest'")
        if algorithm not in _RECORD_HASHES:
            raise refuse(
                f"RECORD line {number} ({path}): hash algorithm {algorithm!r} is not allowed; "
                "use sha256 or stronger"
            )
        try:
            size = int(size_text)
        except ValueError:
            raise refuse(
                f"RECORD line {number} ({path}): size {size_text!r} is not a number"
            ) from None
        rows[path] = (algorithm, digest.rstrip("="), size)
    return rows


def _b64_digest(hasher: Any) -> str:
    """A digest as RECORD writes it: urlsafe base64 without padding."""
    return base64.urlsafe_b64encode(hasher.digest()).decode("ascii").rstrip("=")


def _plugin_entry_points(text: str, refuse: _Refuse) -> list[EntryPoint]:
    """The entry points in group ``arcade.plugins`` of an ``entry_points.txt``."""
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise refuse(f"entry_points.txt is not valid: {str(exc).splitlines()[0]}") from None
    if not parser.has_section(PLUGIN_GROUP):
        return []
    entry_points = []
    for name, value in parser.items(PLUGIN_GROUP):
        try:
            entry_points.append(EntryPoint.parse(name, value))
        except ValueError as exc:
            raise refuse(f"entry_points.txt: {exc}") from None
    return entry_points


def _module_dir(names: set[str], module: str, data_dir: str) -> str | None:
    """Directory (``""`` for the root) holding entry ``module`` inside the wheel, or None."""
    for prefix in ("", f"{data_dir}/purelib/", f"{data_dir}/platlib/"):
        base = prefix + module.replace(".", "/")
        if f"{base}/__init__.py" in names:
            return base
        parent = base.rpartition("/")[0]
        if f"{base}.py" in names or any(
            n.startswith(f"{base}.") and n.endswith((".so", ".pyd")) for n in names
        ):
            return parent
        if any(n.startswith(f"{base}/") for n in names):  # namespace package
            return base
    return None


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
) -> _OpenWheel:
    refuse = _Refuse(filename)
    try:
        wname, wversion, _build, wtags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise refuse(f"not a valid wheel filename ({exc})") from None

    infos = zf.infolist()
    if len(infos) > limits.max_files:
        raise refuse(f"has {len(infos)} members, over the limit of {limits.max_files}")
    members: dict[str, zipfile.ZipInfo] = {}
    declared = 0
    for zi in infos:
        _check_member(zi, refuse, limits)
        if zi.filename in members:
            raise refuse(f"member {zi.filename!r} appears twice in the zip")
        members[zi.filename] = zi
        if not zi.is_dir():
            declared += zi.file_size
    if declared > limits.max_uncompressed_bytes:
        raise refuse(
            f"declares {declared} bytes uncompressed, over the limit of "
            f"{limits.max_uncompressed_bytes} (zip bomb?)"
        )
    if declared >= limits.ratio_min_bytes and declared > limits.max_ratio * max(size, 1):
        raise refuse(
            f"expands {declared / max(size, 1):.0f}-fold, over the limit of "
            f"{limits.max_ratio:.0f}:1 (zip bomb?)"
        )

    # .dist-info must be single and match the filename.
    dist_infos = {
        top for top in (n.split("/", 1)[0] for n in members if "/" in n)
        if top.endswith(".dist-info")
    }
    if len(dist_infos) != 1:
        found = ", ".join(sorted(dist_infos)) or "none"
        raise refuse(f"must contain exactly one top-level .dist-info directory (found {found})")
    dist_info = dist_infos.pop()
    di_name, _, di_version = dist_info[: -len(".dist-info")].rpartition("-")
    try:
        di_matches = canonicalize_name(di_name) == wname and Version(di_version) == wversion
    except InvalidVersion:
        di_matches = False
    if not di_matches:
        raise refuse(f".dist-info directory {dist_info!r} does not match the wheel filename")
    stem_parts = filename[: -len(".whl")].split("-")
    data_dir = f"{stem_parts[0]}-{stem_parts[1]}.data"

    def read_dist_info(leaf: str, *, required: bool) -> str | None:
        zi = members.get(f"{dist_info}/{leaf}")
        if zi is None:
            if required:
                raise refuse(f"has no {dist_info}/{leaf}")
            return None
        return _text(_read_member(zf, zi, refuse, limits.max_metadata_bytes), leaf, refuse)

    # METADATA
    metadata_text = read_dist_info("METADATA", required=True)
    assert metadata_text is not None
    metadata = email.parser.HeaderParser().parsestr(metadata_text)
    meta_name = (metadata.get("Name") or "").strip()
    meta_version = (metadata.get("Version") or "").strip()
    if not meta_name:
        raise refuse("METADATA has no Name field")
    if not meta_version:
        raise refuse("METADATA has no Version field")
    if canonicalize_name(meta_name) != wname:
        raise refuse(
            f"METADATA names the project {meta_name!r} but the filename says {str(wname)!r}"
        )
    try:
        version = Version(meta_version)
    except InvalidVersion:
        raise refuse(f"METADATA Version {meta_version!r} is not a PEP 440 version") from None
    if version != wversion:
        raise refuse(
            f"METADATA has Version {meta_version} but the filename says {wversion}"
        )
    requires_dist = tuple(r.strip() for r in metadata.get_all("Requires-Dist") or ())
    for text in requires_dist:
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            raise refuse(f"METADATA Requires-Dist {text!r} is invalid: {exc}") from None
    requires_python = (metadata.get("Requires-Python") or "").strip() or None

    # WHEEL
    wheel_text = read_dist_info("WHEEL", required=True)
    assert wheel_text is not None
    wheel_meta = email.parser.HeaderParser().parsestr(wheel_text)
    wheel_version = (wheel_meta.get("Wheel-Version") or "").strip()
    if not wheel_version.startswith("1."):
        raise refuse(
            f"WHEEL has Wheel-Version {wheel_version or '(missing)'}; only 1.x is supported"
        )
    root_is_purelib = (wheel_meta.get("Root-Is-Purelib") or "").strip().lower() == "true"

    # Compatibility with this interpreter.
    if check_compatibility:
        if not _tag_supported(wtags):
            raise refuse(
                f"is built for {', '.join(sorted(str(t) for t in wtags))}, which this "
                f"interpreter ({platform.python_implementation()} {_python_version()} on "
                f"{sys.platform} {platform.machine()}) does not support"
            )
        if requires_python is not None:
            try:
                spec = SpecifierSet(requires_python)
            except InvalidSpecifier:
                raise refuse(
                    f"METADATA Requires-Python {requires_python!r} is not a valid specifier"
                ) from None
            if not spec.contains(_python_version(), prereleases=True):
                raise refuse(
                    f"requires Python {requires_python}, but this is Python {_python_version()}"
                )

    # RECORD: every member listed with a strong hash and its size.
    record_name = f"{dist_info}/RECORD"
    record_text = read_dist_info("RECORD", required=True)
    assert record_text is not None
    listed = _parse_record(record_text, refuse)
    records: dict[str, tuple[str, str, int]] = {}
    for name, zi in members.items():
        if zi.is_dir() or name == record_name:
            continue
        if name.rpartition("/")[0] == dist_info and name.rpartition("/")[2] in _SIGNATURES:
            continue
        if name not in listed:
            raise refuse(f"member {name!r} is not listed in RECORD")
        entry = listed[name]
        if entry is None:
            raise refuse(f"RECORD has no hash and size for {name!r}")
        if entry[2] != zi.file_size:
            raise refuse(
                f"RECORD says {name!r} is {entry[2]} bytes, but the zip declares {zi.file_size}"
            )
        records[name] = entry
    if verify_contents:
        for name, (algorithm, digest, _size) in records.items():
            _verify_member(zf, members[name], algorithm, digest, refuse)

    # Entry points in arcade.plugins.
    ep_text = read_dist_info("entry_points.txt", required=False)
    entry_points = _plugin_entry_points(ep_text, refuse) if ep_text is not None else []
    entry_point: EntryPoint | None = None
    if len(entry_points) == 1:
        entry_point = entry_points[0]
    elif plugin and not entry_points:
        raise refuse(
            f"declares no entry point in group {PLUGIN_GROUP!r}; a plugin needs exactly one, "
            "e.g. [project.entry-points.\"arcade.plugins\"] cpu = \"arcade_cpu:Cpu\""
        )
    elif plugin:
        raise refuse(
            f"declares {len(entry_points)} entry points in group {PLUGIN_GROUP!r} "
            f"({', '.join(ep.name for ep in entry_points)}); a plugin needs exactly one"
        )

    manifest: Manifest | None = None
    if entry_point is not None:
        module_dir = _module_dir(set(members), entry_point.module, data_dir)
        if module_dir is None:
            raise refuse(
                f"entry point '{entry_point}' names module {entry_point.module!r}, which is not "
                "in the wheel"
            )
        manifest_name = f"{module_dir}/{MANIFEST_FILENAME}" if module_dir else MANIFEST_FILENAME
        manifest_zi = members.get(manifest_name)
        if manifest_zi is not None:
            data = _read_member(zf, manifest_zi, refuse, limits.max_metadata_bytes)
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
    return _OpenWheel(
        info=info,
        zf=zf,
        dist_info=dist_info,
        data_dir=data_dir,
        root_is_purelib=root_is_purelib,
        entry_points=tuple(entry_points),
        records=records,
    )


@contextlib.contextmanager
def _open_wheel(
    path: str | os.PathLike[str],
    *,
    plugin: bool,
    expected_sha256: str | None,
    limits: WheelLimits,
    verify_contents: bool,
    check_compatibility: bool,
    filename: str | None = None,
    check_schema: bool = True,
) -> Iterator[_OpenWheel]:
    """Inspect a wheel and keep it open (same file handle) for the caller, e.g. to unpack it."""
    p = Path(path)
    name = filename or p.name
    refuse = _Refuse(name)
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
        sha256 = _sha256_of(fh)
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
    with _open_wheel(
        path,
        plugin=plugin,
        expected_sha256=expected_sha256,
        limits=limits,
        verify_contents=True,
        check_compatibility=check_compatibility,
        filename=filename,
    ) as opened:
        return opened.info


# ---------------------------------------------------------------------------------------------
# Requirements


@cache
def _host_versions() -> dict[str, Version]:
    from importlib.metadata import version as dist_version

    from . import __version__

    return {"arcade": Version(__version__), "pluggy": Version(dist_version("pluggy"))}


def _describe_req(req: Requirement) -> str:
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


def _wanted(wheel: WheelInfo, extras: frozenset[str]) -> list[Requirement]:
    """``wheel``'s requirements whose markers hold here, with ``extras`` requested."""
    out = []
    for text in wheel.requires_dist:
        req = Requirement(text)
        if req.marker is None or any(
            req.marker.evaluate({"extra": extra}) for extra in ("", *sorted(extras))
        ):
            out.append(req)
    return out


def check_requirements(plugin: WheelInfo, dependencies: Sequence[WheelInfo]) -> list[WheelInfo]:
    """Resolve ``plugin``'s ``Requires-Dist`` transitively among ``dependencies``, offline.

    Markers are evaluated for this interpreter and extras are honoured. Returns the wheels
    to install, ``plugin`` first, then dependencies in the order they were reached; wheels
    nobody needs are left out. A requirement on ``arcade`` or ``pluggy`` is checked against
    the host's own version and never installed. When several wheels of one project are given,
    the highest version satisfying the first requirement on it is chosen, and every later
    requirement must accept that choice. Raises :class:`InstallError` naming the requirement
    and who needs it: incompatible host version, missing dependency, unsuitable version.
    """
    by_name: dict[str, list[WheelInfo]] = {}
    for dep in dependencies:
        if dep.name != plugin.name:
            by_name.setdefault(dep.name, []).append(dep)
    for candidates in by_name.values():
        candidates.sort(key=lambda w: Version(w.version), reverse=True)

    chosen: dict[str, WheelInfo] = {plugin.name: plugin}
    extras_done: dict[str, frozenset[str]] = {plugin.name: frozenset()}
    order = [plugin]
    who_label = {plugin.name: f"plugin {plugin.name!r}"}
    queue: list[tuple[WheelInfo, frozenset[str]]] = [(plugin, frozenset())]
    while queue:
        wheel, extras = queue.pop(0)
        who = who_label[wheel.name]
        for req in _wanted(wheel, extras):
            name = canonicalize_name(req.name)
            if name in HOST_PROVIDED:
                host = _host_versions()[name]
                if not req.specifier.contains(host, prereleases=True):
                    raise InstallError(
                        f"{who} requires {_describe_req(req)}, but the host provides "
                        f"{name} {host}"
                    )
                continue
            if name in chosen:
                have = chosen[name]
                if not req.specifier.contains(Version(have.version), prereleases=True):
                    raise InstallError(
                        f"{who} requires {_describe_req(req)}, but {have.filename} "
                        f"(version {have.version}) was chosen for another requirement"
                        if have is not plugin
                        else f"{who} requires {_describe_req(req)}, which conflicts with "
                        f"the plugin's own version {have.version}"
                    )
            else:
                candidates = by_name.get(name, [])
                if not candidates:
                    raise InstallError(
                        f"{who} requires {_describe_req(req)}, but no wheel for {name!r} was "
                        "given; publish its wheel together with the plugin"
                    )
                fitting = [
                    w for w in candidates
                    if req.specifier.contains(Version(w.version), prereleases=True)
                ]
                if not fitting:
                    given = ", ".join(w.filename for w in candidates)
                    raise InstallError(
                        f"{who} requires {_describe_req(req)}, but the given wheel for "
                        f"{name!r} does not satisfy it ({given})"
                    )
                chosen[name] = fitting[0]
                order.append(fitting[0])
                who_label[name] = f"{name} {fitting[0].version} (needed by {who})"
                queue.append((fitting[0], frozenset(req.extras)))
                extras_done[name] = frozenset(req.extras)
                continue
            new_extras = frozenset(req.extras) - extras_done[name]
            if new_extras:
                extras_done[name] |= new_extras
                queue.append((chosen[name], extras_done[name]))
    return order
