"""Wheel inspection without running code, each refusal's message, and requirement checks."""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import struct
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from arcade_core import (
    EntryPoint,
    InstallError,
    InvalidWheel,
    WheelInfo,
    WheelLimits,
    __version__,
    inspect_wheel,
)
from arcade_core.requirements import HOST_PROVIDED, check_requirements
from tests.wheelmaker import make_wheel

PLUGGY = importlib.metadata.version("pluggy")


def rewrite(
    path: Path,
    *,
    drop: tuple[str, ...] = (),
    replace: dict[str, bytes] | None = None,
    compress: dict[str, int] | None = None,
) -> Path:
    """Rewrite the wheel at ``path`` in place, dropping or replacing members."""
    with zipfile.ZipFile(path) as zf:
        members = [(zi.filename, zf.read(zi)) for zi in zf.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            if name in drop:
                continue
            data = (replace or {}).get(name, data)
            zf.writestr(name, data, compress_type=(compress or {}).get(name, zipfile.ZIP_DEFLATED))
    return path


def refusal(path: Path, **kwargs: object) -> str:
    with pytest.raises(InvalidWheel) as excinfo:
        inspect_wheel(path, **kwargs)  # type: ignore[arg-type]
    message = str(excinfo.value)
    assert message.startswith(f"{path.name}: ") or "no such file" in message
    return message


# ---------------------------------------------------------------------------------------------
# What inspection reports


def test_plugin_wheel_is_described_without_running_its_code(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    code = f"open({str(marker)!r}, 'w').close()\nclass Plugin:\n    pass\n"
    wheel = make_wheel(
        tmp_path,
        "Demo_Plugin",
        "1.2.0",
        files={"demo_plugin/__init__.py": code},
        manifest={"description": "demo", "interval": 5},
        requires=["six>=1.16", "pluggy>=1.5"],
        requires_python=">=3.8",
        summary="A demo plugin",
    )
    info = inspect_wheel(wheel)
    assert info == WheelInfo(
        path=wheel,
        filename="Demo_Plugin-1.2.0-py3-none-any.whl",
        name="demo-plugin",
        version="1.2.0",
        summary="A demo plugin",
        requires_dist=("six>=1.16", "pluggy>=1.5"),
        requires_python=">=3.8",
        tags=frozenset({"py3-none-any"}),
        entry_point=EntryPoint("Demo_Plugin", "demo_plugin", "Plugin"),
        manifest=info.manifest,
        sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        size=wheel.stat().st_size,
    )
    assert info.is_plugin and info.key == "demo-plugin@1.2.0"
    assert info.manifest is not None and info.manifest.interval == 5.0
    assert info.entry_point is not None and info.entry_point.value == "demo_plugin:Plugin"
    assert not marker.exists()
    assert "demo_plugin" not in sys.modules


def test_plugin_without_manifest_has_none(tmp_path: Path) -> None:
    info = inspect_wheel(make_wheel(tmp_path, "plain"))
    assert info.manifest is None and info.is_plugin


def test_manifest_of_a_module_entry_point_sits_next_to_the_module(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "flat",
        files={"flat_mod.py": "X = 1\n", "arcade-plugin.json": '{"type": "notifier"}'},
        entry_points=["flat = flat_mod"],
    )
    info = inspect_wheel(wheel)
    assert info.entry_point == EntryPoint("flat", "flat_mod", None)
    assert info.entry_point.value == "flat_mod"
    assert info.manifest is not None and info.manifest.type == "notifier"


def test_dependency_wheel_needs_no_entry_point(tmp_path: Path) -> None:
    info = inspect_wheel(make_wheel(tmp_path, "libdep", entry_points=[]), plugin=False)
    assert info.entry_point is None and info.manifest is None and not info.is_plugin


def test_real_third_party_wheel_is_inspected(third_party_wheels: dict[str, Path]) -> None:
    six = third_party_wheels["six"]
    info = inspect_wheel(six, plugin=False)
    assert info.name == "six" and info.version == "1.17.0"
    assert info.tags == frozenset({"py2-none-any", "py3-none-any"})
    assert info.requires_python is not None and not info.is_plugin
    assert refusal(six).endswith("declares no entry point in group 'arcade.plugins'; a plugin "
                                 "needs exactly one, e.g. [project.entry-points.\"arcade.plugins\"]"
                                 " cpu = \"arcade_cpu:Cpu\"")


def test_wheel_stored_under_another_name_is_inspected_by_its_real_name(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "src", "cached")
    stored = tmp_path / f"{hashlib.sha256(wheel.read_bytes()).hexdigest()}.whl"
    shutil.copy(wheel, stored)
    info = inspect_wheel(stored, filename=wheel.name)
    assert info.name == "cached" and info.filename == wheel.name and info.path == stored


def test_expected_sha256_is_checked(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "hashed")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert inspect_wheel(wheel, expected_sha256=digest.upper()).sha256 == digest
    message = refusal(wheel, expected_sha256="0" * 64)
    assert message == f"{wheel.name}: sha256 mismatch: expected {'0' * 64}, got {digest}"


def test_foreign_wheel_is_accepted_when_compatibility_is_not_checked(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "winonly", tag="cp27-cp27m-win32", requires_python="<3")
    assert inspect_wheel(wheel, check_compatibility=False).tags == {"cp27-cp27m-win32"}


# ---------------------------------------------------------------------------------------------
# Refusals: the file itself


def test_missing_file_is_refused(tmp_path: Path) -> None:
    assert "no such file" in refusal(tmp_path / "gone-1.0-py3-none-any.whl")


def test_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk-1.0-py3-none-any.whl"
    path.write_bytes(b"this is not a zip archive at all")
    assert "not a zip file or a corrupt one (File is not a zip file)" in refusal(path)


def test_truncated_zip_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "cut")
    wheel.write_bytes(wheel.read_bytes()[:-40])
    assert "not a zip file or a corrupt one" in refusal(wheel)


def test_bad_filename_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "named")
    nameless = Path(shutil.copy(wheel, tmp_path / "named.whl"))
    assert "not a valid wheel filename" in refusal(nameless)
    zipped = Path(shutil.copy(wheel, tmp_path / "named-1.0.0-py3-none-any.zip"))
    assert refusal(zipped).endswith("not a valid wheel filename (it must end with '.whl')")


def test_wheel_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "heavy")
    message = refusal(wheel, limits=WheelLimits(max_wheel_bytes=100))
    assert message.endswith(f"is {wheel.stat().st_size} bytes, over the limit of 100")


# ---------------------------------------------------------------------------------------------
# Refusals: members (zip slip, symlinks, zip bombs)


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("/etc/cron.d/evil", "member '/etc/cron.d/evil' is an absolute path"),
        ("../../evil.py", "member '../../evil.py' contains '..' (path traversal"),
        ("pkg/../../evil.py", "member 'pkg/../../evil.py' contains '..'"),
        ("C:/Windows/evil.dll", "member 'C:/Windows/evil.dll' starts with a drive letter"),
        ("pkg\\evil.py", "member 'pkg\\\\evil.py' contains a backslash"),
    ],
)
def test_zip_slip_members_are_refused(tmp_path: Path, member: str, reason: str) -> None:
    wheel = make_wheel(tmp_path, "slip", extra_members={member: b"boom"})
    assert reason in refusal(wheel)


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "linky", symlinks={"linky/passwd": "/etc/passwd"})
    assert refusal(wheel).endswith(
        "member 'linky/passwd' is a symlink; wheels may contain regular files only"
    )


def test_duplicate_member_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "twice")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate
        with zipfile.ZipFile(wheel, "a") as zf:
            zf.writestr("twice/__init__.py", "print('shadow')\n")
    assert refusal(wheel).endswith("member 'twice/__init__.py' appears twice in the zip")


def test_unusual_compression_method_is_refused(tmp_path: Path) -> None:
    wheel = rewrite(
        make_wheel(tmp_path, "bz"), compress={"bz/__init__.py": zipfile.ZIP_BZIP2}
    )
    assert "member 'bz/__init__.py' uses zip compression method 12" in refusal(wheel)


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    files = {f"many/m{i}.py": "" for i in range(10)} | {"many/__init__.py": ""}
    wheel = make_wheel(tmp_path, "many", files=files, entry_points=["many = many"])
    message = refusal(wheel, limits=WheelLimits(max_files=8))
    assert message.endswith("has 15 members, over the limit of 8")


def test_total_uncompressed_size_over_the_limit_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "big", files={"big/__init__.py": "x = 1\n" * 5000},
                       entry_points=["big = big"])
    message = refusal(wheel, limits=WheelLimits(max_uncompressed_bytes=10_000))
    assert "bytes uncompressed, over the limit of 10000 (zip bomb?)" in message


def test_member_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "fat", files={"fat/__init__.py": "y = 2\n" * 2000},
                       entry_points=["fat = fat"])
    message = refusal(wheel, limits=WheelLimits(max_member_bytes=5000))
    assert "member 'fat/__init__.py' declares 12000 bytes uncompressed, over the limit" in message


def test_compression_ratio_over_the_limit_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "bomb",
        files={"bomb/__init__.py": "", "bomb/zeros.bin": b"\0" * (2 * 1024 * 1024)},
        entry_points=["bomb = bomb"],
    )
    message = refusal(wheel)
    assert "member 'bomb/zeros.bin' has a compression ratio of" in message
    assert message.endswith("over the limit of 200:1 (zip bomb?)")
    generous = WheelLimits(max_ratio=10_000.0)
    assert inspect_wheel(wheel, limits=generous).name == "bomb"


def test_archive_of_many_small_highly_compressed_members_is_refused(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {f"spray/z{i}.bin": b"\0" * 100_000 for i in range(20)}
    wheel = make_wheel(tmp_path, "spray", files={"spray/__init__.py": "", **files},
                       entry_points=["spray = spray"])
    message = refusal(wheel)  # each member is under ratio_min_bytes; the whole is not
    assert "expands" in message and "-fold, over the limit of 200:1 (zip bomb?)" in message


def test_member_inflating_past_its_declared_size_is_refused(tmp_path: Path) -> None:
    """A lying zip header (small declared size, big deflate stream) is never inflated in full."""
    payload = b"A" * 200_000
    wheel = make_wheel(tmp_path, "liar", files={"liar/__init__.py": "", "liar/data.bin": payload},
                       entry_points=["liar = liar"])
    raw = bytearray(wheel.read_bytes())
    # Patch the uncompressed size in the local header and the central directory to 100 bytes.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := raw.find(signature, start)) != -1:
            name_len_at = 26 if signature == b"PK\x03\x04" else 28
            name_len = struct.unpack_from("<H", raw, start + name_len_at)[0]
            name_at = start + (30 if signature == b"PK\x03\x04" else 46)
            if raw[name_at:name_at + name_len] == b"liar/data.bin":
                struct.pack_into("<I", raw, start + offset, 100)
            start += 4
    wheel.write_bytes(bytes(raw))
    message = refusal(wheel)
    assert "liar/data.bin" in message
    assert "RECORD says 'liar/data.bin' is 200000 bytes, but the zip declares 100" in message


# ---------------------------------------------------------------------------------------------
# Refusals: metadata


def test_missing_metadata_is_refused(tmp_path: Path) -> None:
    wheel = rewrite(make_wheel(tmp_path, "nometa"), drop=("nometa-1.0.0.dist-info/METADATA",))
    assert refusal(wheel).endswith("has no nometa-1.0.0.dist-info/METADATA")


def test_missing_dist_info_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "nodist")
    with zipfile.ZipFile(wheel) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if ".dist-info/" not in n}
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    assert "must contain exactly one top-level .dist-info directory (found none)" in refusal(wheel)


def test_metadata_without_name_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "anon", metadata="Metadata-Version: 2.1\nVersion: 1.0.0\n")
    assert refusal(wheel).endswith("METADATA has no Name field")


def test_metadata_without_version_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "nover", metadata="Metadata-Version: 2.1\nName: nover\n")
    assert refusal(wheel).endswith("METADATA has no Version field")


def test_metadata_name_differing_from_filename_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path, "honest", metadata="Metadata-Version: 2.1\nName: impostor\nVersion: 1.0.0\n"
    )
    assert refusal(wheel).endswith(
        "METADATA names the project 'impostor' but the filename says 'honest'"
    )


def test_metadata_version_differing_from_filename_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path, "versed", metadata="Metadata-Version: 2.1\nName: versed\nVersion: 2.0\n"
    )
    assert refusal(wheel).endswith("METADATA has Version 2.0 but the filename says 1.0.0")


def test_invalid_requires_dist_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "needy", requires=["six >>> 1"])
    assert "METADATA Requires-Dist 'six >>> 1' is invalid" in refusal(wheel)


def test_unsupported_wheel_version_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "future")
    name = "future-1.0.0.dist-info/WHEEL"
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(name).replace(b"Wheel-Version: 1.0", b"Wheel-Version: 2.0")
    assert "WHEEL has Wheel-Version 2.0; only 1.x is supported" in refusal(
        rewrite(wheel, replace={name: text})
    )


def test_wheel_tag_unsupported_here_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "winonly", tag="cp27-cp27m-win32")
    assert "is built for cp27-cp27m-win32, which this interpreter (CPython" in refusal(wheel)


def test_platform_wheel_for_this_interpreter_is_accepted(tmp_path: Path) -> None:
    from packaging.tags import sys_tags

    best = next(iter(sys_tags()))
    wheel = make_wheel(tmp_path, "native", tag=str(best))
    assert inspect_wheel(wheel).tags == {str(best)}


def test_requires_python_excluding_this_interpreter_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "py4", requires_python=">=4")
    version = ".".join(map(str, sys.version_info[:3]))
    assert refusal(wheel).endswith(f"requires Python >=4, but this is Python {version}")


def test_invalid_requires_python_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "pyx", requires_python="three")
    assert "METADATA Requires-Python 'three' is not a valid specifier" in refusal(wheel)


# ---------------------------------------------------------------------------------------------
# Refusals: RECORD


def test_missing_record_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "norecord", record=False)
    assert refusal(wheel).endswith("has no norecord-1.0.0.dist-info/RECORD")


def test_member_missing_from_record_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "sneaky", extra_members={"sneaky/backdoor.py": b"x = 1\n"})
    assert refusal(wheel).endswith("member 'sneaky/backdoor.py' is not listed in RECORD")


def test_record_hash_mismatch_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "tampered", bad_record_for="tampered/__init__.py")
    assert refusal(wheel).endswith(
        "'tampered/__init__.py' does not match its RECORD hash (the file was changed after the "
        "wheel was built)"
    )


def test_weak_record_hash_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "weak")
    record = "weak-1.0.0.dist-info/RECORD"
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(record).replace(b"sha256=", b"md5=")
    assert "hash algorithm 'md5' is not allowed; use sha256 or stronger" in refusal(
        rewrite(wheel, replace={record: text})
    )


def test_record_without_hash_for_a_member_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "bare")
    record = "bare-1.0.0.dist-info/RECORD"
    with zipfile.ZipFile(wheel) as zf:
        lines = zf.read(record).decode().splitlines()
    lines = ["bare/__init__.py,," if line.startswith("bare/__init__.py,") else line
             for line in lines]
    wheel = rewrite(wheel, replace={record: ("\n".join(lines) + "\n").encode()})
    assert refusal(wheel).endswith("RECORD has no hash and size for 'bare/__init__.py'")


# ---------------------------------------------------------------------------------------------
# Refusals: entry points and manifest


def test_plugin_without_entry_point_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "noep", entry_points=[])
    assert "declares no entry point in group 'arcade.plugins'" in refusal(wheel)


def test_plugin_with_several_entry_points_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "multi", entry_points=["a = multi:Plugin", "b = multi:Plugin"])
    assert refusal(wheel).endswith(
        "declares 2 entry points in group 'arcade.plugins' (a, b); a plugin needs exactly one"
    )
    assert inspect_wheel(wheel, plugin=False).entry_point is None


def test_entry_point_naming_a_missing_module_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "typo", entry_points=["typo = tpyo:Plugin"])
    assert refusal(wheel).endswith(
        "entry point 'typo = tpyo:Plugin' names module 'tpyo', which is not in the wheel"
    )


def test_malformed_entry_point_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "mangled", entry_points=["mangled = mangled:Plugin()"])
    assert "entry_points.txt: entry point mangled = 'mangled:Plugin()' is not of the form" in (
        refusal(wheel)
    )


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        ("{oops", "not valid JSON"),
        ({"isolation": "thread"}, "'isolation' is \"thread\"; use one of 'inline', 'process'"),
        ({"interval": -5}, "'interval' is -5; give a positive number of seconds"),
        ({"config_schema": {"type": 12}}, "'config_schema' is not a valid JSON Schema"),
        (
            {"config_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
             "default_config": {"n": "x"}},
            "'default_config' does not match 'config_schema': config.n: 'x' is not of type",
        ),
    ],
)
def test_invalid_manifest_is_refused(
    tmp_path: Path, manifest: dict[str, object] | str, reason: str
) -> None:
    wheel = make_wheel(tmp_path, "manif", manifest=manifest)
    message = refusal(wheel)
    assert message.startswith(
        f"{wheel.name}: manif/arcade-plugin.json: invalid plugin manifest (arcade-plugin.json): "
    )
    assert reason in message


# ---------------------------------------------------------------------------------------------
# Requirements


def info_of(tmp_path: Path, name: str, version: str = "1.0.0", *, requires: tuple[str, ...] = (),
            plugin: bool = False) -> WheelInfo:
    wheel = make_wheel(tmp_path / "wheels", name, version, requires=requires,
                       entry_points=None if plugin else [])
    return inspect_wheel(wheel, plugin=plugin)


def test_requirements_resolve_transitively_plugin_first(tmp_path: Path) -> None:
    plugin = info_of(tmp_path, "plug", requires=("alpha>=1",), plugin=True)
    alpha = info_of(tmp_path, "alpha", "1.5", requires=("beta",))
    beta = info_of(tmp_path, "beta")
    unused = info_of(tmp_path, "unused")
    assert check_requirements(plugin, [unused, beta, alpha]) == [plugin, alpha, beta]


def test_markers_are_evaluated_for_this_interpreter(tmp_path: Path) -> None:
    plugin = info_of(
        tmp_path,
        "plug",
        requires=("alpha; python_version >= '3'", "legacy; python_version < '3'",
                  "winonly; sys_platform == 'win32'" if sys.platform != "win32" else "alpha"),
        plugin=True,
    )
    alpha = info_of(tmp_path, "alpha")
    assert check_requirements(plugin, [alpha]) == [plugin, alpha]


def test_extras_pull_in_their_requirements(tmp_path: Path) -> None:
    plugin = info_of(tmp_path, "plug", requires=("alpha[fast]",), plugin=True)
    alpha = info_of(
        tmp_path, "alpha", requires=("speedup; extra == 'fast'", "docs; extra == 'doc'")
    )
    speedup = info_of(tmp_path, "speedup")
    assert check_requirements(plugin, [alpha, speedup]) == [plugin, alpha, speedup]
    without = info_of(tmp_path / "b", "plug", requires=("alpha",), plugin=True)
    assert check_requirements(without, [alpha, speedup]) == [without, alpha]


def test_extra_requested_later_adds_its_requirements(tmp_path: Path) -> None:
    plugin = info_of(tmp_path, "plug", requires=("alpha", "beta"), plugin=True)
    alpha = info_of(tmp_path, "alpha", requires=("speedup; extra == 'fast'",))
    beta = info_of(tmp_path, "beta", requires=("alpha[fast]",))
    speedup = info_of(tmp_path, "speedup")
    assert check_requirements(plugin, [alpha, beta, speedup]) == [plugin, alpha, beta, speedup]


def test_host_provided_requirements_are_checked_but_never_installed(tmp_path: Path) -> None:
    assert frozenset({"arcade", "arcade-fleet", "pluggy"}) == HOST_PROVIDED
    plugin = info_of(tmp_path, "plug",
                     requires=("pluggy>=1.5", "arcade", "Arcade>=0.1", "arcade-fleet>=0.1"),
                     plugin=True)
    pluggy_wheel = info_of(tmp_path, "pluggy", PLUGGY)
    assert check_requirements(plugin, [pluggy_wheel]) == [plugin]


def test_incompatible_host_requirement_is_refused(tmp_path: Path) -> None:
    plugin = info_of(tmp_path, "x", requires=("pluggy<1",), plugin=True)
    with pytest.raises(InstallError) as excinfo:
        check_requirements(plugin, [])
    assert str(excinfo.value) == (
        f"plugin 'x' requires pluggy<1, but the host provides pluggy {PLUGGY}"
    )
    arcade_plugin = info_of(tmp_path / "b", "y", requires=("arcade>=99",), plugin=True)
    with pytest.raises(InstallError, match=rf"requires arcade>=99, but the host provides arcade "
                                           rf"{__version__}"):
        check_requirements(arcade_plugin, [])


def test_missing_dependency_is_refused_naming_it_and_who_needs_it(tmp_path: Path) -> None:
    plugin = info_of(tmp_path, "plug", requires=("alpha",), plugin=True)
    alpha = info_of(tmp_path, "alpha", "2.0", requires=("gamma>=3",))
    with pytest.raises(InstallError) as excinfo:
        check_requirements(plugin, [alpha])
    assert str(excinfo.value) == (
        "alpha 2.0 (needed by plugin 'plug') requires gamma>=3, but no wheel for 'gamma' was "
        "given; publish its wheel together with the plugin"
    )


def test_dependency_of_the_wrong_version_is_refused(tmp_path: Path) -> None:
    plugin = info_of(tmp_path, "plug", requires=("alpha>=2",), plugin=True)
    alpha = info_of(tmp_path, "alpha", "1.5")
    with pytest.raises(InstallError) as excinfo:
        check_requirements(plugin, [alpha])
    assert str(excinfo.value) == (
        "plugin 'plug' requires alpha>=2, but the given wheel for 'alpha' does not satisfy it "
        "(alpha-1.5-py3-none-any.whl)"
    )


def test_conflicting_requirements_on_one_dependency_are_refused(tmp_path: Path) -> None:
    plugin = info_of(tmp_path, "plug", requires=("alpha", "beta"), plugin=True)
    alpha = info_of(tmp_path, "alpha", "1.0")
    beta = info_of(tmp_path, "beta", requires=("alpha>=2",))
    with pytest.raises(InstallError, match=r"beta 1\.0\.0 \(needed by plugin 'plug'\) requires "
                                           r"alpha>=2, but alpha-1\.0-py3-none-any\.whl"):
        check_requirements(plugin, [alpha, beta])


def test_highest_fitting_version_is_chosen_among_several(tmp_path: Path) -> None:
    plugin = info_of(tmp_path, "plug", requires=("alpha<3",), plugin=True)
    old, mid, new = (info_of(tmp_path, "alpha", v) for v in ("1.0", "2.0", "3.0"))
    assert check_requirements(plugin, [old, new, mid]) == [plugin, mid]
