"""One plugin of the server's desired state, decoded from the wire and checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from arcade_core import ProtocolError
from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import from_pb
from arcade_core.signing import Signature
from arcade_core.states import Isolation

from .errors import InvalidDesiredPlugin
from .state import WheelFile

__all__ = ["DesiredPlugin"]


@dataclass(frozen=True, slots=True)
class DesiredPlugin:
    """One desired plugin. ``isolation`` ``None``: the plugin's manifest decides.
    ``signatures``: of the version's statement, checked against the agent's own trust."""

    name: str
    version: str
    isolation: Isolation | None
    config: dict[str, Any]
    interval: float
    wheels: tuple[WheelFile, ...]
    refs: tuple[pb.WheelRef, ...]
    signatures: tuple[Signature, ...] = ()

    @property
    def sha256(self) -> str:
        """The plugin wheel's sha256 (the first wheel listed)."""
        return self.wheels[0].sha256 if self.wheels else ""

    def fingerprint(self) -> str:
        """What makes two deliveries of this plugin the same attempt (to remember a
        deterministic failure and not retry it): a signature added later is another
        attempt."""
        return json.dumps(
            [self.version, self.sha256, self.isolation or "", self.config, self.interval,
             sorted((s.key_id, s.signature.hex()) for s in self.signatures)], sort_keys=True,
            default=str,
        )

    @property
    def wheel_hashes(self) -> dict[str, str]:
        """Every wheel of the version, filename → sha256 (what its statement covers)."""
        return {w.filename: w.sha256 for w in self.wheels}

    @classmethod
    def from_pb(cls, plugin: pb.DesiredPlugin) -> DesiredPlugin:
        """Decode one ``DesiredPlugin``; :class:`InvalidDesiredPlugin` says what is wrong."""
        try:
            config = json.loads(plugin.config_json) if plugin.config_json else {}
        except ValueError as exc:
            raise InvalidDesiredPlugin(f"config_json is not valid JSON: {exc}") from None
        if not isinstance(config, dict):
            raise InvalidDesiredPlugin("config_json is not a JSON object")
        try:
            isolation = from_pb(Isolation, plugin.isolation)
        except ProtocolError as exc:
            raise InvalidDesiredPlugin(str(exc)) from None
        wheels = tuple(WheelFile(w.filename, w.sha256, w.size) for w in plugin.wheels)
        if not wheels:
            raise InvalidDesiredPlugin("the desired state lists no wheels for it")
        return cls(
            name=plugin.name,
            version=plugin.version,
            isolation=isolation,
            config=config,
            interval=plugin.interval,
            wheels=wheels,
            refs=tuple(plugin.wheels),
            signatures=tuple(Signature(s.key_id, bytes(s.signature))
                             for s in plugin.signatures),
        )
