"""What the agent has applied, persisted in ``<home>/state.json`` so a restart restores it.

The file records, per plugin, the version, wheel set, config and isolation the agent last
loaded successfully, and the desired-state revision it last finished applying. On start the
agent loads each plugin again from its environment on disk (no download), then registers
with the server saying what really runs. Writes are atomic (temp file, fsync, rename): a
crash leaves either the old or the new file, never half of one. A file that cannot be parsed
is moved aside to ``state.json.corrupt`` and the agent starts empty (the server's desired
state then brings everything back).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arcade_core.states import Isolation

__all__ = ["AppliedPlugin", "AppliedState", "StateStore", "WheelFile"]

log = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class WheelFile:
    """One wheel of a plugin's set, as the server described it."""

    filename: str
    sha256: str
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WheelFile:
        return cls(str(data["filename"]), str(data["sha256"]), int(data.get("size") or 0))


@dataclass(frozen=True, slots=True)
class AppliedPlugin:
    """A plugin as the agent loaded it: enough to load it again from disk."""

    name: str
    version: str
    sha256: str
    isolation: Isolation
    config: dict[str, Any] = field(default_factory=dict)
    interval: float = 0.0
    wheels: tuple[WheelFile, ...] = ()
    #: Declared in the agent's own config (:mod:`arcade_agent.local`), not by the server.
    local: bool = False
    #: The operator's override of the manifest's resource limits (``{}``: none).
    resources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "local": self.local,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "isolation": self.isolation,
            "config": self.config,
            "interval": self.interval,
            "wheels": [w.to_dict() for w in self.wheels],
            "resources": dict(self.resources),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppliedPlugin:
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            sha256=str(data.get("sha256") or ""),
            isolation=Isolation(data.get("isolation") or Isolation.INLINE),
            config=dict(data.get("config") or {}),
            interval=float(data.get("interval") or 0.0),
            wheels=tuple(WheelFile.from_dict(w) for w in data.get("wheels") or ()),
            local=bool(data.get("local", False)),
            resources={str(k): str(v) for k, v in (data.get("resources") or {}).items()},
        )


@dataclass(slots=True)
class AppliedState:
    """The applied revision and the plugins loaded for it, by plugin name."""

    revision: int = 0
    plugins: dict[str, AppliedPlugin] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "revision": self.revision,
            "plugins": [p.to_dict() for p in sorted(self.plugins.values(), key=lambda p: p.name)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppliedState:
        plugins = [AppliedPlugin.from_dict(p) for p in data.get("plugins") or ()]
        return cls(revision=int(data.get("revision") or 0), plugins={p.name: p for p in plugins})

    def pinned_wheels(self) -> set[str]:
        """sha256s of every wheel an applied plugin was built from."""
        return {w.sha256 for p in self.plugins.values() for w in p.wheels}


class StateStore:
    """Reads and atomically writes ``state.json`` in the agent's home (thread-safe)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def load(self) -> AppliedState:
        """The persisted state; an empty one if there is none or it is unreadable."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return AppliedState()
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return AppliedState.from_dict(data)
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            os.replace(self.path, aside)
            log.error("agent state %s is unreadable (%s); moved to %s and starting empty",
                      self.path, exc, aside)
            return AppliedState()

    def save(self, state: AppliedState) -> None:
        """Write ``state`` atomically: temp file in the same directory, fsync, rename."""
        data = json.dumps(state.to_dict(), indent=2, sort_keys=True).encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
