"""Local plugins: the plugins the agent's own config declares (``plugins:``), run with or
without a server.

At start (before the first connection, so the first ``Register`` already lists them) and on
SIGHUP, :meth:`LocalPlugins.apply` brings the host in line with the config's entries
(:mod:`arcade_agent.local_settings`), through the same steps as a server-assigned plugin
(:class:`~arcade_agent._transitions.Transitions`: same environments, install, load, swap,
reconfigure, remove):

* a built-in's wheel comes from arcade-fleet itself (:mod:`arcade_core.builtin`: a
  checkout's ``plugins/`` built, else the wheels shipped in the distribution);
* a ``wheel:`` entry is that wheel, or the wheel of the plugin in that directory together
  with the directory's other wheels (its dependencies);
* a dependency no given wheel provides is packed from the distribution installed beside the
  agent, when its version fits (:mod:`arcade_agent._rewheel`: ``psutil`` for ``cpu`` and
  ``memory``); otherwise the entry fails saying which wheel to put beside it.

Every file is checked against its wheel's ``RECORD`` while it is unpacked, as for any
plugin. The agent's ``[[trust.keys]]`` do **not** apply to local plugins: the operator who
writes the agent's config and puts the wheel on the machine already controls what the
agent runs (the config could equally drop the keys); trust guards against the *server*
widening what runs. The config is checked against the plugin's schema here (the server
checks the configs it sends; nobody else checked these).

The reconciler is told the local names (:meth:`Reconciler.set_local
<arcade_agent.reconciler.Reconciler.set_local>`): a server's desired state never removes
them, and when the server assigns a plugin of the same name, **the local one wins** — the
agent keeps running its own and reports it (``local``) with an error saying the server's
assignment is ignored and how to run it instead. Their statuses are reported with
``PluginStatus.local = true``; they are persisted like other applied plugins (marked
local), so an entry removed from the config is unloaded at the next start.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from arcade_core import ArcadeError, InstallError
from arcade_core.rpc.v1 import pb
from arcade_core.signing import Signature
from arcade_core.states import PluginState

from ._rewheel import RewheelError, wheel_from_installed
from ._transitions import Transitions
from .desired import DesiredPlugin
from .local_settings import LocalPluginSpec
from .report import PluginReport
from .state import WheelFile

if TYPE_CHECKING:
    from arcade_core import Environment

    from .reconciler import Reconciler

__all__ = ["LocalPlugins"]

log = logging.getLogger(__name__)


class LocalPlugins:
    """Runs the ``plugins:`` entries of the agent's config on ``reconciler``'s host.

    ``home``: the agent's home; built or packed wheels go to ``<home>/local-wheels``.
    """

    def __init__(self, reconciler: Reconciler, specs: Sequence[LocalPluginSpec], *,
                 home: Path) -> None:
        self.reconciler = reconciler
        self.specs = tuple(specs)
        self.wheels_dir = home / "local-wheels"
        self._envs: dict[str, Environment] = {}
        never = asyncio.Event()  # a local entry is never superseded by a desired state
        self._transitions = Transitions(
            reconciler.host, reconciler.state, reconciler.statuses_keeper, never,
            self._ensure, save=reconciler.save, plugins_changed=reconciler.plugins_changed)
        reconciler.set_local(self._names())
        reconciler.rebuild_local = self.rebuild

    def _names(self) -> set[str]:
        return {s.name for s in self.specs if s.enabled}

    async def apply(self, specs: Sequence[LocalPluginSpec] | None = None) -> None:
        """Install, load, reconfigure or remove the local plugins so that the host runs
        exactly the enabled entries of ``specs`` (default: those given at construction; a
        new list replaces them, e.g. on SIGHUP). Failures are reported per plugin."""
        if specs is not None:
            self.specs = tuple(specs)
        wanted = {s.name: s for s in self.specs if s.enabled}
        state = self.reconciler.state
        async with self.reconciler.operating:
            for name in self.reconciler.local_names - wanted.keys():
                if name not in state.plugins:  # e.g. an entry that failed to install
                    self.reconciler.statuses_keeper.forget(name)
            self.reconciler.set_local(set(wanted))
            for name, plugin in list(state.plugins.items()):
                if plugin.local and name not in wanted:
                    await self._transitions.remove(name)
            await asyncio.gather(*(self._apply_one(s) for s in wanted.values()))

    async def _apply_one(self, spec: LocalPluginSpec) -> None:
        try:
            paths = await asyncio.to_thread(self._wheels, spec)
            version, sha256 = await asyncio.to_thread(_identify, paths[0])
        except (ArcadeError, OSError, ValueError) as exc:  # ValueError: a bad wheel filename
            self._failed(spec, "", f"{spec.describe()}: {exc}")
            return
        files = tuple(WheelFile(p.name, _sha256(p) if i else sha256, p.stat().st_size)
                      for i, p in enumerate(paths))
        desired = DesiredPlugin(
            name=spec.name, version=version, isolation=spec.isolation, config=spec.config,
            interval=spec.interval, wheels=files,
            refs=tuple(pb.WheelRef(filename=f.filename, sha256=f.sha256, size=f.size)
                       for f in files))
        try:
            env = await asyncio.to_thread(self.reconciler.host.install, paths)
            await asyncio.to_thread(env.manifest.validate_config, spec.config)
        except ArcadeError as exc:
            self._failed(spec, version, f"{spec.describe()}: {exc}")
            return
        self._envs[spec.name] = env
        await self._transitions.apply(desired)
        applied = self.reconciler.state.plugins.get(spec.name)
        if applied is not None and not applied.local:
            self.reconciler.state.plugins[spec.name] = replace(applied, local=True)
            await self.reconciler.save()
        log.info("local plugin %s@%s (%s)", spec.name, version, spec.describe())

    async def rebuild(self, name: str) -> Environment:
        """``name``'s environment installed again from its local wheels (a drift repair:
        the reconciler uninstalled the drifted one)."""
        spec = next((s for s in self.specs if s.name == name), None)
        if spec is None:
            raise InstallError(f"{name} is no longer among the agent's local plugins")
        paths = await asyncio.to_thread(self._wheels, spec)
        env = await asyncio.to_thread(self.reconciler.host.install, paths)
        self._envs[name] = env
        return env

    def _failed(self, spec: LocalPluginSpec, version: str, error: str) -> None:
        log.error("local plugin %s", error)
        self.reconciler.statuses_keeper.set(PluginReport(
            spec.name, version, PluginState.FAILED, error, isolation=spec.isolation,
            local=True))

    async def _ensure(self, name: str, version: str, refs: Sequence[pb.WheelRef], *,
                      on_download: Callable[[], None] | None = None,
                      signatures: Sequence[Signature] = ()) -> Environment:
        """The environment :meth:`_apply_one` installed (the transitions' ensure step)."""
        return self._envs[name]

    # ------------------------------------------------------------------ wheels

    def _wheels(self, spec: LocalPluginSpec) -> list[Path]:
        """The plugin wheel first, then the dependency wheels it needs (worker thread)."""
        if spec.wheel is None:
            from arcade_core.builtin import builtin_wheels

            plugin = builtin_wheels(self.wheels_dir / "builtin", [spec.name])[spec.name]
            candidates: list[Path] = []
        elif spec.wheel.is_dir():
            candidates = sorted(spec.wheel.glob("*.whl"))
            plugin = _plugin_wheel(spec, candidates)
        else:
            plugin, candidates = spec.wheel, []
            wheel_name = str(parse_wheel_filename(plugin.name)[0])
            if wheel_name != spec.name:
                raise InstallError(f"the wheel holds plugin {wheel_name}; name the entry "
                                   f"plugins.{wheel_name}")
        return [plugin, *self._dependencies(spec, plugin, candidates)]

    def _dependencies(self, spec: LocalPluginSpec, plugin: Path,
                      candidates: list[Path]) -> list[Path]:
        from arcade_core.wheelhouse import requirements_of

        found: list[Path] = []
        seen: set[str] = set()
        pending = requirements_of(plugin)
        while pending:
            text = pending.pop(0)
            req = Requirement(text)
            name = str(canonicalize_name(req.name))
            if name in seen:
                continue
            seen.add(name)
            wheel = _matching(req, candidates) or self._installed(spec, req)
            found.append(wheel)
            pending.extend(requirements_of(wheel))
        return found

    def _installed(self, spec: LocalPluginSpec, req: Requirement) -> Path:
        from importlib import metadata

        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            have = ""
        if have and req.specifier.contains(Version(have), prereleases=True):
            try:
                return wheel_from_installed(req.name, self.wheels_dir / "deps")
            except RewheelError as exc:
                reason = str(exc)
        else:
            reason = f"{req.name} {have} is installed" if have else "it is not installed"
        where = (f"in {spec.wheel}" if spec.wheel is not None and spec.wheel.is_dir()
                 else "in a directory beside the plugin wheel and give that directory as "
                      f"plugins.{spec.key or spec.name}.wheel")
        raise InstallError(f"needs {req} and no wheel of it was given ({reason} beside the "
                           f"agent); put its wheel {where}")


def _plugin_wheel(spec: LocalPluginSpec, candidates: list[Path]) -> Path:
    mine = [(parse_wheel_filename(p.name)[1], p) for p in candidates
            if str(parse_wheel_filename(p.name)[0]) == spec.name]
    if not mine:
        raise InstallError(f"no wheel of plugin {spec.name} in {spec.wheel} (the entry's "
                           "key must be the plugin's name)")
    return max(mine)[1]


def _matching(req: Requirement, candidates: list[Path]) -> Path | None:
    best: tuple[Version, Path] | None = None
    for path in candidates:
        name, version, _, _ = parse_wheel_filename(path.name)
        fits = name == canonicalize_name(req.name) and req.specifier.contains(version, True)
        if fits and (best is None or version > best[0]):
            best = (version, path)
    return best[1] if best else None


def _identify(wheel: Path) -> tuple[str, str]:
    """The plugin wheel's version and sha256."""
    return str(parse_wheel_filename(wheel.name)[1]), _sha256(wheel)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
