"""A test job plugin whose behaviour per stage is set by its config, built into real wheels.

``stager`` implements ``before``, ``after`` and ``notify``. Every call appends one JSON line
to the file named by its ``log`` config (so tests see which entries ran, in which order, and
what they were given, in-process or in a child process alike). Config keys:

* ``log`` — the file calls are recorded in (required for the test to see anything);
* ``tag`` — a name for this entry, recorded with each call;
* ``env`` / ``workdir`` — what ``before`` returns;
* ``fail`` — raise ``RuntimeError(fail)`` in any hook; ``crash`` — ``os._exit(7)`` in any hook
  (kills the plugin's process: use with ``isolation: process``);
* ``sleep`` — seconds to sleep in the hook first.

``hookless`` implements only ``collect`` (a job entry using it cannot run its stage).
"""

from __future__ import annotations

from pathlib import Path

from tests.wheelmaker import make_wheel

STAGER = '''\
import json
import os
import time

from arcade_core import hookimpl


class Plugin:
    def __init__(self, config):
        self.config = config

    def _record(self, hook, **data):
        path = self.config.get("log")
        if path:
            line = json.dumps({"hook": hook, "tag": self.config.get("tag", ""),
                               "pid": os.getpid(), **data}, default=str)
            with open(path, "a") as fh:
                fh.write(line + "\\n")
        if self.config.get("sleep"):
            time.sleep(self.config["sleep"])
        if self.config.get("crash"):
            os._exit(7)
        if self.config.get("fail"):
            raise RuntimeError(self.config["fail"])

    @hookimpl
    def before(self, job):
        self._record("before", job_id=job.job_id, stage=job.stage, workdir=job.workdir,
                     env=job.env, outputs=job.outputs)
        out = {"outputs": {self.config.get("tag", "before"): True}}
        if self.config.get("env"):
            out["env"] = self.config["env"]
        if self.config.get("workdir"):
            out["workdir"] = self.config["workdir"]
        return out

    @hookimpl
    def after(self, job, result):
        self._record("after", job_id=job.job_id, stage=job.stage, status=result.status,
                     exit_code=result.exit_code, output=result.output_tail,
                     error=result.error)
        return {"saw": result.status, "exit_code": result.exit_code}

    @hookimpl
    def notify(self, event):
        self._record("notify", kind=event.kind, data=event.data)
'''

HOOKLESS = '''\
from arcade_core import Metric, hookimpl


class Plugin:
    def __init__(self, config):
        pass

    @hookimpl
    def collect(self):
        return [Metric("hookless.value", 1.0)]
'''


def stager_wheel(directory: Path, version: str = "1.0.0", *, name: str = "stager") -> Path:
    """The ``stager`` job plugin (any config is accepted; there is no schema)."""
    module = name.replace("-", "_")
    return make_wheel(directory, name, version, files={f"{module}/__init__.py": STAGER},
                      manifest={"description": "job stage test plugin", "type": "job"})


def hookless_wheel(directory: Path, version: str = "1.0.0") -> Path:
    """A plugin that implements no job hook."""
    return make_wheel(directory, "hookless", version,
                      files={"hookless/__init__.py": HOOKLESS})
