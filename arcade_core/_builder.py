"""Building one plugin environment from opened wheels, in a temp dir, moved into place.

Used by :meth:`EnvironmentStore.install <arcade_core._store.EnvironmentStore.install>` once
the wheels are opened and inspected: :func:`pick_plugin` finds the plugin among them, and
:func:`build` lays out the environment (``pyvenv.cfg``, the interpreter symlink, the
unpacked wheels, the record of :mod:`arcade_core._environment`) in the store's temp dir and
renames it into place in one step. The wheels are unpacked with the ``installer`` library
(:mod:`arcade_core._unpacker`) while every byte is checked against the wheel's ``RECORD``
(:mod:`arcade_core._record`) — in one pass, so nothing is decompressed twice. No bytecode is
compiled, pip is never run and the network is never touched. A crash leaves only the temp
directory (swept by the store on its next start), never a half environment.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ._environment import Environment, WheelRecord, read_environment, write_record
from ._exceptions import InstallError, InvalidWheel
from ._inspection import OpenWheel
from ._manifest import Manifest
from ._unpacker import PY as _PY
from ._unpacker import unpack
from ._wheel import PLUGIN_GROUP, WheelInfo

__all__ = ["build", "pick_plugin"]


def pick_plugin(opened: Sequence[OpenWheel]) -> OpenWheel:
    """The plugin among the given wheels: the one with an ``arcade.plugins`` entry point
    that no other such wheel requires (a plugin may depend on another plugin's wheel)."""
    candidates = [o for o in opened if o.entry_points]
    required = {
        canonicalize_name(Requirement(text).name)
        for o in candidates
        for text in o.info.requires_dist
    }
    roots = [o for o in candidates if o.info.name not in required]
    if not roots:
        names = ", ".join(o.info.filename for o in opened)
        raise InstallError(
            f"none of the given wheels ({names}) declares an entry point in group "
            f"{PLUGIN_GROUP!r}; include the plugin wheel"
        )
    if len(roots) > 1:
        names = ", ".join(o.info.filename for o in roots)
        raise InstallError(
            f"several given wheels declare an {PLUGIN_GROUP!r} entry point ({names}); "
            "install one plugin at a time"
        )
    plugin = roots[0]
    if len(plugin.entry_points) > 1:
        raise InvalidWheel(
            f"{plugin.info.filename}: declares {len(plugin.entry_points)} entry points in "
            f"group {PLUGIN_GROUP!r} ({', '.join(ep.name for ep in plugin.entry_points)}); "
            "a plugin needs exactly one"
        )
    return plugin


def build(chosen: Sequence[OpenWheel], tmp: Path, final: Path) -> Environment:
    """Build the environment of ``chosen`` (the plugin wheel first, then its dependency
    wheels in install order) in the fresh directory ``tmp`` and rename it to ``final``.

    When an identical environment won the race to ``final``, that one is returned; on any
    failure ``tmp`` is removed and nothing is left at ``final``.
    """
    plugin = chosen[0].info
    assert plugin.entry_point is not None
    try:
        site = tmp / "lib" / _PY / "site-packages"
        site.mkdir(parents=True)
        base = _base_interpreter()
        (tmp / "bin").mkdir()
        os.symlink(base, tmp / "bin" / "python")
        (tmp / "pyvenv.cfg").write_text(
            f"home = {base.parent}\n"
            "include-system-site-packages = false\n"
            f"version = {sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2]}\n"
        )
        for opened in chosen:
            unpack(opened, tmp, final, opened.info.name)
        created_at = time.time()
        manifest = plugin.manifest or Manifest()
        write_record(tmp, plugin, manifest, [o.info for o in chosen], created_at)
        _move_into_place(tmp, final, plugin)
    except _AlreadyThere as there:
        shutil.rmtree(tmp, ignore_errors=True)
        return there.env
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Environment(
        name=plugin.name,
        version=plugin.version,
        path=final,
        site_packages=final / "lib" / _PY / "site-packages",
        python=final / "bin" / "python",
        entry_point=plugin.entry_point,
        manifest=manifest,
        sha256=plugin.sha256,
        wheels=tuple(
            WheelRecord(o.info.filename, o.info.sha256, o.info.size) for o in chosen
        ),
        created_at=created_at,
    )


class _AlreadyThere(Exception):
    """An identical environment was moved into place by someone else meanwhile."""

    def __init__(self, env: Environment) -> None:
        super().__init__(env.key)
        self.env = env


def _base_interpreter() -> Path:
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Path(os.path.realpath(base))


def _move_into_place(tmp: Path, final: Path, plugin: WheelInfo) -> None:
    for attempt in range(3):
        final.parent.mkdir(exist_ok=True)
        try:
            os.rename(tmp, final)
            return
        except FileNotFoundError:
            if attempt < 2:
                continue  # a concurrent remove() took the name dir away; make it again
            raise InstallError(
                f"could not move the new environment for {plugin.key} into place at {final}"
            ) from None
        except OSError as exc:
            existing = read_environment(final)
            if existing is not None and existing.sha256 == plugin.sha256:
                raise _AlreadyThere(existing) from None  # another installer won the race
            raise InstallError(
                f"could not move the new environment for {plugin.key} into place at "
                f"{final}: {exc.strerror or exc}"
            ) from None
