"""Which isolation a plugin version may run with: the rules of exec plugins on the server.

An exec plugin (its manifest names an ``exec`` executable, docs/protocol.md) runs only as
``exec``; a Python plugin runs ``inline`` or ``process``, never ``exec``. A request that asks
for the other kind is refused (:class:`~arcade_server.errors.Invalid`, naming the fix) before
anything is written: :func:`requested_isolation`, for installs and jobs' plugin entries alike.
An isolation KEPT from an agent's current assignment is not the operator's new request: across
an upgrade that turns a plugin into an exec plugin (or back) it gives way to the new
manifest's (:func:`kept_isolation`).
"""

from __future__ import annotations

from arcade_core import Manifest
from arcade_core.states import Isolation

from ..errors import Invalid

__all__ = ["kept_isolation", "requested_isolation"]

_ISOLATIONS = frozenset(Isolation)
_PYTHON = (Isolation.INLINE, Isolation.PROCESS)


def requested_isolation(value: str | None, manifest: Manifest, what: str) -> Isolation:
    """``value`` (``None``: the manifest's) as the isolation ``what`` (``"cpu@1.0.0"``, or
    ``"plugins[0] ('cpu')"``) runs with; :class:`Invalid` for an unknown word or one its kind
    of plugin cannot run with."""
    if value is None:
        return manifest.isolation
    if value not in _ISOLATIONS:
        raise Invalid(f"{what}: isolation {value!r} is not supported; use one of "
                      f"{', '.join(Isolation)}")
    isolation = Isolation(value)
    if manifest.exec is not None and isolation != Isolation.EXEC:
        raise Invalid(f"{what} is an exec plugin (its manifest runs the executable "
                      f"{manifest.exec!r}): it runs only with isolation exec; drop the "
                      f"isolation or give \"exec\"")
    if manifest.exec is None and isolation == Isolation.EXEC:
        raise Invalid(f"{what} is a Python plugin (its manifest names no 'exec' executable): "
                      f"give isolation {' or '.join(_PYTHON)}, or omit it for the manifest's "
                      f"({manifest.isolation})")
    return isolation


def kept_isolation(stored: str | None, manifest: Manifest) -> Isolation:
    """The isolation an agent keeps from its current assignment (``stored``), if the new
    version's kind of plugin can run with it; otherwise the new manifest's."""
    if stored not in _ISOLATIONS:
        return manifest.isolation
    isolation = Isolation(stored)
    if (manifest.exec is not None) != (isolation == Isolation.EXEC):
        return manifest.isolation
    return isolation
