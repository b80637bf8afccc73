"""The rules a wheel must pass, one function per rule, each refusing with a message that
says what is wrong and which file is to blame (see :mod:`arcade_core._inspection` for the
order they run in). Nothing here reads the zip: callers hand in names, headers and texts.
"""

from __future__ import annotations

import configparser
import email.message
import email.parser
import platform
import re
import stat
import sys
import zipfile
from collections.abc import Iterable, Mapping
from functools import cache

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, sys_tags
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ._archive import Refuse
from ._exceptions import InvalidWheel
from ._record import RecordEntry, parse_record
from ._wheel import PLUGIN_GROUP, EntryPoint, WheelLimits

__all__ = [
    "check_archive",
    "check_compatibility",
    "check_member",
    "check_metadata",
    "check_record",
    "check_wheel_file",
    "dist_info_dir",
    "module_dir",
    "plugin_entry_point",
    "plugin_entry_points",
]

_DRIVE = re.compile(r"^[A-Za-z]:")
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")


# ---------------------------------------------------------------------------------------------
# The zip's members


def check_member(zi: zipfile.ZipInfo, refuse: Refuse, limits: WheelLimits) -> None:
    """One member: a safe relative name ("zip slip"), a regular file or directory, not
    encrypted, deflated or stored, and within the zip-bomb limits."""
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


def check_archive(
    infos: list[zipfile.ZipInfo], size: int, refuse: Refuse, limits: WheelLimits
) -> dict[str, zipfile.ZipInfo]:
    """Every member checked (:func:`check_member`), none twice, and the archive as a whole
    within the file-count, size and ratio limits. Returns the members by name."""
    if len(infos) > limits.max_files:
        raise refuse(f"has {len(infos)} members, over the limit of {limits.max_files}")
    members: dict[str, zipfile.ZipInfo] = {}
    declared = 0
    for zi in infos:
        check_member(zi, refuse, limits)
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
    return members


def dist_info_dir(
    names: Iterable[str], wname: NormalizedName, wversion: Version, refuse: Refuse
) -> str:
    """The single top-level ``.dist-info`` directory, which must match the filename."""
    dist_infos = {
        top for top in (n.split("/", 1)[0] for n in names if "/" in n)
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
    return dist_info


# ---------------------------------------------------------------------------------------------
# .dist-info files


def check_metadata(
    text: str, wname: NormalizedName, wversion: Version, refuse: Refuse
) -> tuple[email.message.Message, Version, tuple[str, ...], str | None]:
    """``METADATA``: ``Name`` and ``Version`` present and matching the filename, every
    ``Requires-Dist`` valid. Returns the parsed headers, the version, the requirements and
    ``Requires-Python`` (``None`` when absent)."""
    metadata = email.parser.HeaderParser().parsestr(text)
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
    for requirement in requires_dist:
        try:
            Requirement(requirement)
        except InvalidRequirement as exc:
            raise refuse(f"METADATA Requires-Dist {requirement!r} is invalid: {exc}") from None
    requires_python = (metadata.get("Requires-Python") or "").strip() or None
    return metadata, version, requires_dist, requires_python


def check_wheel_file(text: str, refuse: Refuse) -> bool:
    """``WHEEL``: ``Wheel-Version`` 1.x. Returns ``Root-Is-Purelib``."""
    wheel_meta = email.parser.HeaderParser().parsestr(text)
    wheel_version = (wheel_meta.get("Wheel-Version") or "").strip()
    if not wheel_version.startswith("1."):
        raise refuse(
            f"WHEEL has Wheel-Version {wheel_version or '(missing)'}; only 1.x is supported"
        )
    return (wheel_meta.get("Root-Is-Purelib") or "").strip().lower() == "true"


def check_record(
    text: str, members: Mapping[str, zipfile.ZipInfo], dist_info: str, refuse: Refuse
) -> dict[str, RecordEntry]:
    """``RECORD`` lists every member (but itself and its signatures) with a strong hash and
    the size the zip declares. Returns those entries by member name."""
    record_name = f"{dist_info}/RECORD"
    listed = parse_record(text, refuse)
    records: dict[str, RecordEntry] = {}
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
    return records


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


def check_compatibility(
    tags: frozenset[Tag], requires_python: str | None, refuse: Refuse
) -> None:
    """The wheel's tags and ``Requires-Python`` fit this interpreter."""
    if not _tag_supported(tags):
        raise refuse(
            f"is built for {', '.join(sorted(str(t) for t in tags))}, which this "
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


# ---------------------------------------------------------------------------------------------
# The plugin entry point


def plugin_entry_points(text: str, refuse: Refuse) -> list[EntryPoint]:
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
        except InvalidWheel as exc:
            raise refuse(f"entry_points.txt: {exc}") from None
    return entry_points


def plugin_entry_point(
    entry_points: list[EntryPoint], *, plugin: bool, refuse: Refuse
) -> EntryPoint | None:
    """The wheel's one plugin entry point; a plugin wheel (``plugin=True``) needs exactly one,
    another wheel may have none (several: ``None``)."""
    if len(entry_points) == 1:
        return entry_points[0]
    if plugin and not entry_points:
        raise refuse(
            f"declares no entry point in group {PLUGIN_GROUP!r}; a plugin needs exactly one, "
            "e.g. [project.entry-points.\"arcade.plugins\"] cpu = \"arcade_cpu:Cpu\""
        )
    if plugin:
        raise refuse(
            f"declares {len(entry_points)} entry points in group {PLUGIN_GROUP!r} "
            f"({', '.join(ep.name for ep in entry_points)}); a plugin needs exactly one"
        )
    return None


def module_dir(names: set[str], module: str, data_dir: str) -> str | None:
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
