"""The plugin environments under one root directory: :class:`EnvironmentStore`.

One immutable, offline-built environment per plugin version (laid out as
:mod:`arcade_core._environment` describes). Used by :class:`~arcade_core.PluginHost` for
``install``/``installed``/``uninstall`` and to find the environment ``load`` imports or
starts. :meth:`EnvironmentStore.install` inspects the wheels first (hostile or broken ones
are refused), resolves the plugin's requirements among the given wheels (``arcade`` and
``pluggy`` come from the host and are never installed) and has
:mod:`arcade_core._builder` build the environment in ``<root>/.tmp-*``, renamed into place in
one step, so a crash leaves only a temp directory (swept on the next start), never a half
environment that :meth:`EnvironmentStore.list` would report.

Nothing here blocks on anything but the local disk; async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ._builder import build, pick_plugin
from ._environment import Environment, read_environment
from ._exceptions import InstallError, InvalidSpec, InvalidWheel, PluginNotFound
from ._inspection import open_wheel
from ._spec import normalize_name
from ._wheel import DEFAULT_LIMITS, WheelLimits
from .requirements import HOST_PROVIDED, check_requirements

__all__ = ["EnvironmentStore"]

_TMP = ".tmp-"
_TRASH = ".trash-"
# Distinguishes this process's temp dirs from a dead process's that had the same pid.
_PROCESS_TOKEN = secrets.token_hex(4)


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
            env = read_environment(self._env_dir(name, str(version), digest))
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
            plugin = pick_plugin(opened)
            info = plugin.info
            assert info.entry_point is not None
            if info.name in HOST_PROVIDED:
                raise InstallError(
                    f"{info.filename}: {info.name!r} is provided by the host and cannot be "
                    "installed as a plugin"
                )
            final = self._env_dir(info.name, info.version, info.sha256)
            existing = read_environment(final)
            if existing is not None and existing.sha256 == info.sha256:
                return existing
            chosen = check_requirements(info, [o.info for o in opened if o is not plugin])
            by_info = {id(o.info): o for o in opened}
            return build([by_info[id(w)] for w in chosen], self._scratch(_TMP), final)

    # -- queries ---------------------------------------------------------------------------

    def _envs_of(self, name: str) -> list[Environment]:
        name_dir = self.root / name
        try:
            with os.scandir(name_dir) as entries:
                dirs = [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")]
        except OSError:
            return []
        return [env for env in map(read_environment, dirs) if env is not None]

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
