"""Requirement resolution: which of the wheels published with a plugin it needs, offline.

The registry calls :func:`check_requirements` when a plugin is published (so a plugin whose
dependencies cannot be met is refused up front) and the agent's host calls it again while
installing. Nothing is downloaded and no index is asked: the plugin's ``Requires-Dist`` are
resolved among the dependency wheels given with it, markers evaluated for this interpreter.
The projects in :data:`HOST_PROVIDED` come from the host and are never installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from ._exceptions import InstallError
from ._wheel import WheelInfo

__all__ = ["HOST_PROVIDED", "check_requirements"]

#: Projects the host provides to every plugin: a requirement on them is checked against the
#: host's own version, and a wheel of them is never installed into a plugin environment.
#: ``arcade-fleet`` is this distribution's name; ``arcade`` is still accepted for plugins
#: written before the rename (the name on the public index is an unrelated project, so a
#: plugin that lists it must never have it fetched or installed).
HOST_PROVIDED: frozenset[str] = frozenset({"arcade", "arcade-fleet", "pluggy"})


@cache
def _host_versions() -> dict[str, Version]:
    from importlib.metadata import version as dist_version

    from ._version import __version__

    arcade = Version(__version__)
    return {"arcade": arcade, "arcade-fleet": arcade,
            "pluggy": Version(dist_version("pluggy"))}


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
