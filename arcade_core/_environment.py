"""Plugin environments: one immutable, offline-built virtual environment per plugin version.

An environment lives at ``<root>/<name>/<version>-<sha8>/`` (``sha8`` = the first 8 hex
digits of the plugin wheel's sha256, so a re-published wheel with the same version gets its
own directory) and is laid out by hand, because ``python -m venv`` costs 55-80 ms of
interpreter start and ensurepip seconds::

    pyvenv.cfg                        home / include-system-site-packages = false / version
    bin/python -> <base interpreter>  (a symlink; the env's interpreter for process isolation)
    lib/python3.X/site-packages/      the plugin wheel and its dependency wheels, unpacked
    arcade-env.json                   what is installed here; written last

The wheels are inspected first (hostile or broken ones are refused), the plugin's
requirements are resolved among the given wheels (``arcade`` and ``pluggy`` come from the
host and are never installed), and the wheels are unpacked with the ``installer`` library
(:mod:`arcade_core._unpacker`) while every byte is checked against the wheel's ``RECORD``
(:mod:`arcade_core._record`) — in one pass, so nothing is
decompressed twice. No bytecode is compiled, pip is never run and the network is never
touched. Everything is built in ``<root>/.tmp-*`` and renamed into place in one step, so a
crash leaves only a temp directory (swept on the next start), never a half environment that
:meth:`EnvironmentStore.list` would report.

Nothing here blocks on anything but the local disk; async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ._exceptions import InstallError, InvalidSpec, InvalidWheel, PluginNotFound
from ._inspection import OpenWheel, open_wheel
from ._manifest import Manifest
from ._spec import normalize_name
from ._unpacker import PY as _PY
from ._unpacker import unpack
from ._wheel import DEFAULT_LIMITS, PLUGIN_GROUP, EntryPoint, WheelInfo, WheelLimits
from .requirements import HOST_PROVIDED, check_requirements
from .states import Isolation

__all__ = ["ENV_FILENAME", "Environment", "EnvironmentStore", "WheelRecord"]

ENV_FILENAME = "arcade-env.json"
_FORMAT = 1
_TMP = ".tmp-"
_TRASH = ".trash-"
# Distinguishes this process's temp dirs from a dead process's that had the same pid.
_PROCESS_TOKEN = secrets.token_hex(4)


@dataclass(frozen=True)
class WheelRecord:
    """One wheel installed into an environment."""

    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Environment:
    """An installed plugin version: where it is and what it was built from.

    ``site_packages`` goes on ``sys.path`` for in-process loading; ``python`` runs the
    plugin in a child process. ``sha256`` is the plugin wheel's; ``wheels`` lists the
    plugin wheel first, then the dependency wheels installed with it.
    """

    name: str
    version: str
    path: Path
    site_packages: Path
    python: Path
    entry_point: EntryPoint
    manifest: Manifest
    sha256: str
    wheels: tuple[WheelRecord, ...]
    created_at: float

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


# ---------------------------------------------------------------------------------------------
# The store


def _base_interpreter() -> Path:
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Path(os.path.realpath(base))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _entry_point_from(data: Any) -> EntryPoint:
    if not isinstance(data, dict):
        raise ValueError("entry_point")
    name, module, attr = data["name"], data["module"], data.get("attr")
    if not isinstance(name, str) or not isinstance(module, str):
        raise ValueError("entry_point")
    if attr is not None and not isinstance(attr, str):
        raise ValueError("entry_point")
    return EntryPoint(name, module, attr)


def _manifest_from(data: Any) -> Manifest:
    """Rebuild a manifest that was checked when the environment was installed."""
    if not isinstance(data, dict):
        raise ValueError("manifest")
    manifest = Manifest(
        description=str(data.get("description", "")),
        type=str(data.get("type", "collector")),
        config_schema=data.get("config_schema"),
        default_config=dict(data.get("default_config") or {}),
        isolation=Isolation(data.get("isolation", Isolation.INLINE)),
        interval=None if data.get("interval") is None else float(data["interval"]),
        resources=dict(data.get("resources") or {}),
    )
    if not isinstance(manifest.config_schema, (dict, type(None))):
        raise ValueError("manifest")
    return manifest


class _AlreadyThere(Exception):
    """An identical environment was moved into place by someone else meanwhile."""

    def __init__(self, env: Environment) -> None:
        super().__init__(env.key)
        self.env = env


class EnvironmentStore:
    """The plugin environments under one root directory (e.g. ``<home>/envs``).

    Safe to use from several threads and processes at once: builds go to private temp
    dirs and the final rename either wins or finds an identical environment already there.
    """

    def __init__(self, root: str | os.PathLike[str], *, check_schemas: bool = True) -> None:
        """Open (creating if needed) the store at ``root`` and sweep leftovers of crashed
        installs and removals: ``.tmp-*``/``.trash-*`` dirs of processes no longer alive.

        ``check_schemas=False``: installs do not check the manifests' JSON Schemas (see
        :meth:`Manifest.from_json <arcade_core.Manifest.from_json>`)."""
        self.root = Path(root).absolute()
        self.check_schemas = check_schemas
        self.root.mkdir(parents=True, exist_ok=True)
        self._sweep()

    # -- housekeeping ----------------------------------------------------------------------

    def _scratch(self, prefix: str) -> Path:
        return self.root / f"{prefix}{os.getpid()}-{_PROCESS_TOKEN}-{secrets.token_hex(4)}"

    def _sweep(self) -> None:
        with os.scandir(self.root) as entries:
            for entry in entries:
                if not entry.name.startswith((_TMP, _TRASH)):
                    continue
                parts = entry.name.split("-")
                try:
                    pid, token = int(parts[1]), parts[2]
                except (IndexError, ValueError):
                    pid, token = -1, ""
                live_elsewhere = pid != os.getpid() and pid > 0 and _is_alive(pid)
                ours = pid == os.getpid() and token == _PROCESS_TOKEN
                if not live_elsewhere and not ours:
                    shutil.rmtree(entry.path, ignore_errors=True)

    def _env_dir(self, name: str, version: str, sha256: str) -> Path:
        return self.root / name / f"{version}-{sha256[:8]}"

    def _read(self, env_dir: Path) -> Environment | None:
        """The environment in ``env_dir``, or None if it is missing or broken."""
        try:
            data = json.loads((env_dir / ENV_FILENAME).read_bytes())
            wheels = tuple(
                WheelRecord(str(w["filename"]), str(w["sha256"]), int(w["size"]))
                for w in data["wheels"]
            )
            python_dir = str(data.get("python", _PY))
            version = str(Version(str(data["version"])))  # a garbled version = broken dir
            return Environment(
                name=str(data["name"]),
                version=version,
                path=env_dir,
                site_packages=env_dir / "lib" / python_dir / "site-packages",
                python=env_dir / "bin" / "python",
                entry_point=_entry_point_from(data["entry_point"]),
                manifest=_manifest_from(data["manifest"]),
                sha256=str(data["sha256"]),
                wheels=wheels,
                created_at=float(data["created_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- install ---------------------------------------------------------------------------

    def _existing(self, paths: Sequence[Path], expected: Mapping[str, str]) -> Environment | None:
        """Fast path: the environment these very wheels were installed as, if it exists.

        A given wheel matches when a directory for its name and version exists and its
        sha256 is the one recorded there; the match counts only if every given wheel is one
        the environment was built from (otherwise the full path decides which is the plugin).
        Costs a directory lookup per wheel, plus hashing the wheel whose version dir exists.
        """
        filenames = {p.name for p in paths}
        for path in paths:
            try:
                name, version, _, _ = parse_wheel_filename(path.name)
            except InvalidWheelFilename:
                continue
            prefix = f"{version}-"
            try:
                with os.scandir(self.root / name) as entries:
                    if not any(e.name.startswith(prefix) for e in entries):
                        continue
                with open(path, "rb") as fh:
                    digest = hashlib.file_digest(fh, "sha256").hexdigest()
            except OSError:
                continue
            env = self._read(self._env_dir(name, str(version), digest))
            if env is None or env.sha256 != digest:
                continue
            if not filenames <= {w.filename for w in env.wheels}:
                continue
            for other in paths:
                want = expected.get(other.name)
                if want is None:
                    continue
                if other is path:
                    got = digest
                else:
                    with open(other, "rb") as fh:
                        got = hashlib.file_digest(fh, "sha256").hexdigest()
                if got != want.lower():
                    raise InvalidWheel(f"{other.name}: sha256 mismatch: expected {want}, got {got}")
            return env
        return None

    def install(
        self,
        wheels: Sequence[str | os.PathLike[str]],
        *,
        expected_sha256: Mapping[str, str] | None = None,
        limits: WheelLimits = DEFAULT_LIMITS,
    ) -> Environment:
        """Build (or find) the environment for a plugin wheel and its dependency wheels.

        ``wheels`` holds the plugin wheel (the one with an ``arcade.plugins`` entry point)
        and its dependency wheels in any order; wheels nobody requires are skipped.
        ``expected_sha256`` maps wheel filenames to the sha256 the caller trusts (e.g. the
        registry's); any mismatch is refused. When an environment built from the very same
        plugin wheel exists it is returned unchanged. Raises :class:`InvalidWheel` for a bad
        wheel and :class:`InstallError` for requirements that cannot be met offline.
        """
        paths = list(dict.fromkeys(Path(w) for w in wheels))  # the same file given twice
        if not paths:
            raise InstallError("no wheels given: pass the plugin wheel and its dependency wheels")
        expected = dict(expected_sha256 or {})
        env = self._existing(paths, expected)
        if env is not None:
            return env

        with contextlib.ExitStack() as stack:
            opened = [
                stack.enter_context(
                    open_wheel(
                        path,
                        plugin=False,
                        expected_sha256=expected.get(path.name),
                        limits=limits,
                        verify_contents=False,  # verified while unpacking, in one pass
                        check_compatibility=True,
                        check_schema=self.check_schemas,
                    )
                )
                for path in paths
            ]
            plugin = self._pick_plugin(opened)
            info = plugin.info
            assert info.entry_point is not None
            if info.name in HOST_PROVIDED:
                raise InstallError(
                    f"{info.filename}: {info.name!r} is provided by the host and cannot be "
                    "installed as a plugin"
                )
            final = self._env_dir(info.name, info.version, info.sha256)
            existing = self._read(final)
            if existing is not None and existing.sha256 == info.sha256:
                return existing
            chosen = check_requirements(info, [o.info for o in opened if o is not plugin])
            by_info = {id(o.info): o for o in opened}
            return self._build([by_info[id(w)] for w in chosen], final)

    @staticmethod
    def _pick_plugin(opened: Sequence[OpenWheel]) -> OpenWheel:
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

    def _build(self, chosen: Sequence[OpenWheel], final: Path) -> Environment:
        plugin = chosen[0].info
        assert plugin.entry_point is not None
        tmp = self._scratch(_TMP)
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
            record = {
                "format": _FORMAT,
                "name": plugin.name,
                "version": plugin.version,
                "entry_point": {
                    "name": plugin.entry_point.name,
                    "module": plugin.entry_point.module,
                    "attr": plugin.entry_point.attr,
                },
                "manifest": manifest.to_dict(),
                "sha256": plugin.sha256,
                "wheels": [
                    {"filename": o.info.filename, "sha256": o.info.sha256, "size": o.info.size}
                    for o in chosen
                ],
                "python": _PY,
                "created_at": created_at,
            }
            try:
                with open(tmp / ENV_FILENAME, "x", encoding="utf-8") as fh:
                    json.dump(record, fh, indent=1)
            except FileExistsError:
                raise InstallError(
                    f"a wheel installs a file named {ENV_FILENAME!r}, which is reserved"
                ) from None
            self._move_into_place(tmp, final, plugin)
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

    def _move_into_place(self, tmp: Path, final: Path, plugin: WheelInfo) -> None:
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
                existing = self._read(final)
                if existing is not None and existing.sha256 == plugin.sha256:
                    raise _AlreadyThere(existing) from None  # another installer won the race
                raise InstallError(
                    f"could not move the new environment for {plugin.key} into place at "
                    f"{final}: {exc.strerror or exc}"
                ) from None

    # -- queries ---------------------------------------------------------------------------

    def _envs_of(self, name: str) -> list[Environment]:
        name_dir = self.root / name
        try:
            with os.scandir(name_dir) as entries:
                dirs = [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")]
        except OSError:
            return []
        return [env for env in map(self._read, dirs) if env is not None]

    def find(self, name: str, version: str | None = None) -> list[Environment]:
        """Every installed environment of ``name`` (of ``version`` only, when given).

        Raises :class:`PluginNotFound` when there is none, or the name or version is invalid.
        """
        try:
            normalized = normalize_name(name)
        except InvalidSpec as exc:
            raise PluginNotFound(f"no plugin environment installed for {name!r}: {exc}") from None
        envs = self._envs_of(normalized)
        if version is not None:
            try:
                wanted = Version(version)
            except InvalidVersion:
                raise PluginNotFound(
                    f"no environment for {name}@{version}: {version!r} is not a PEP 440 version"
                ) from None
            envs = [e for e in envs if Version(e.version) == wanted]
        if not envs:
            what = f"{normalized}@{version}" if version is not None else repr(normalized)
            raise PluginNotFound(f"no plugin environment installed for {what}")
        return envs

    def get(self, name: str, version: str | None = None) -> Environment:
        """The installed environment for ``name`` (and ``version``; else the newest)."""
        return max(self.find(name, version), key=lambda e: (Version(e.version), e.created_at))

    def list(self) -> list[Environment]:
        """Every installed environment, by name then version; broken dirs are skipped."""
        envs: list[Environment] = []
        with os.scandir(self.root) as entries:
            names = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
        for name in names:
            envs.extend(self._envs_of(name))
        return sorted(envs, key=lambda e: (e.name, Version(e.version), e.created_at))

    def remove(self, env: Environment) -> None:
        """Delete an environment: renamed out of sight first (so it is never half-listed),
        then removed. Removing one that is already gone is a no-op."""
        path = Path(env.path).absolute()
        if path.parent.parent != self.root:
            raise InstallError(f"{path} is not an environment of the store at {self.root}")
        trash = self._scratch(_TRASH)
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the name dir, when this was its last version
