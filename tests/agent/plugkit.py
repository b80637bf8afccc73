"""Test plugin wheels for agent tests: versions whose code differs, broken and crashing ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import to_pb
from arcade_core.states import Isolation
from tests.wheelmaker import make_wheel

PROBE = '''\
from arcade_core import hookimpl, Metric

VERSION = "{version}"
{extra}

class Plugin:
    def __init__(self, config):
        self.scale = config.get("scale", 1)

    @hookimpl
    def collect(self):
        major = float(VERSION.split(".")[0])
        return [Metric(name="{metric}", value=major * self.scale, labels={{"v": VERSION}})]
'''

MANIFEST = {
    "description": "agent test probe",
    "config_schema": {
        "type": "object",
        "properties": {"scale": {"type": "number", "default": 1}},
        "additionalProperties": False,
    },
    "interval": 0.2,
}

CRASHER = '''\
import os
from arcade_core import hookimpl, Metric


class Plugin:
    def __init__(self, config):
        pass

    @hookimpl
    def collect(self):
        os._exit(3)
'''


def probe_wheel(directory: Path, version: str = "1.0.0", *, name: str = "probe",
                broken: bool = False, metric: str = "probe.major") -> Path:
    """A plugin whose ``collect`` reports its major version (times config ``scale``)."""
    extra = 'raise RuntimeError("this version is broken on purpose")' if broken else ""
    module = name.replace("-", "_")
    return make_wheel(
        directory, name, version,
        files={f"{module}/__init__.py": PROBE.format(version=version, extra=extra,
                                                    metric=metric)},
        manifest=MANIFEST,
    )


def crasher_wheel(directory: Path, version: str = "1.0.0") -> Path:
    """A plugin that kills its own process on every ``collect``."""
    return make_wheel(directory, "crasher", version, files={"crasher/__init__.py": CRASHER},
                      manifest={"isolation": "process", "interval": 0.2})


def wheel_ref(path: Path) -> pb.WheelRef:
    data = path.read_bytes()
    return pb.WheelRef(filename=path.name, sha256=hashlib.sha256(data).hexdigest(),
                       size=len(data))


def desired_plugin(wheel: Path, name: str, version: str, *, config_json: str = "{}",
                   isolation: str = "inline", interval: float = 0.0,
                   deps: tuple[Path, ...] = ()) -> pb.DesiredPlugin:
    return pb.DesiredPlugin(
        name=name, version=version,
        isolation=to_pb(Isolation(isolation) if isolation else None), config_json=config_json,
        interval=interval, wheels=[wheel_ref(wheel), *(wheel_ref(d) for d in deps)],
    )
