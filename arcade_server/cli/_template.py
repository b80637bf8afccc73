'''``arcade plugin new NAME [--dir DIR] [--exec]``: write a complete plugin project to start from.

The project builds, passes its tests and publishes without edits: a collector plugin (the
number of entries in a directory, ``directory`` in its config), its entry point in the group
``arcade.plugins``, a manifest with a config schema, tests that use the public harness
(:mod:`arcade_core.testing`: the class from the sources, then the built wheel in a real
host, in-process and in a child process) and a README that says how to test, build and
publish it. ``--exec`` writes an exec plugin project instead (a POSIX sh script speaking the
line protocol of docs/protocol.md; :mod:`arcade_server.cli._template_exec`), built, tested and
published the same way. No API options: nothing is sent anywhere.
'''

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from ._app import Command
from ._output import fail
from ._template_exec import EXECUTABLES, TEST_COMMAND, render_exec

__all__ = ["plugin", "render"]

# A project name that is also a valid package name once normalized: letters, digits, and
# single '-', '_' or '.' between them (PEP 508), starting with a letter.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*$")

_PYPROJECT = '''\
[build-system]
requires = ["flit_core>=3.9,<5"]
build-backend = "flit_core.buildapi"

[project]
name = "{name}"
version = "0.1.0"
description = "An Arcade plugin: the number of entries in a directory."
readme = "README.md"
requires-python = ">=3.11"
# Never arcade-fleet or pluggy here: the host that loads the plugin provides them.
dependencies = []

[project.optional-dependencies]
test = ["arcade-fleet[testing]"]

# Exactly one entry point in this group: the class Arcade instantiates with the config.
[project.entry-points."arcade.plugins"]
{short} = "{module}:{cls}"

[tool.pytest.ini_options]
testpaths = ["tests"]
# importlib: test files may share names with other projects' tests in one session
addopts = "--import-mode=importlib"
'''

_MODULE = '''\
"""{name}: an Arcade collector plugin reporting the number of entries in a directory.

Arcade instantiates :class:`{cls}` with the plugin's config (validated against the schema
in ``arcade-plugin.json``, defaults filled in) and calls ``collect`` on the plugin's interval.
"""

from __future__ import annotations

import os
from typing import Any

from arcade_core import Metric, hookimpl

__all__ = ["{cls}"]


class {cls}:
    """Counts the entries of ``config["directory"]`` on every collect."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.directory = config["directory"]

    @hookimpl
    def collect(self) -> list[Metric]:
        """One metric, ``{module}.entries``; a directory that cannot be read raises, and
        Arcade records the error against the plugin."""
        with os.scandir(self.directory) as entries:
            count = sum(1 for _ in entries)
        return [Metric("{module}.entries", count, labels={{"directory": self.directory}},
                       unit="entries")]
'''

_MANIFEST = '''\
{{
  "description": "The number of entries in a directory.",
  "type": "collector",
  "config_schema": {{
    "type": "object",
    "properties": {{
      "directory": {{"type": "string", "minLength": 1, "default": "."}}
    }},
    "additionalProperties": false
  }}
}}
'''

_TEST = '''\
"""{name}'s tests, with Arcade's harness (the fixtures of arcade_core.testing): the class
from the sources, then the built wheel installed into a real plugin host, in-process and in
a child process, as an agent runs it."""

from pathlib import Path
from types import ModuleType

import pytest

from arcade_core import InvalidConfig, PluginCallError
from arcade_core.testing import PluginProject


def test_collect_counts_the_entries(arcade_module: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b").mkdir()
    [metric] = arcade_module.{cls}({{"directory": str(tmp_path)}}).collect()
    assert (metric.name, metric.value, metric.unit) == ("{module}.entries", 2, "entries")


def test_the_wheel_and_its_config_schema(arcade_project: PluginProject) -> None:
    assert arcade_project.check() == {{"directory": "."}}
    with pytest.raises(InvalidConfig, match=r"config\\.directory"):
        arcade_project.check({{"directory": 3}})


def test_collects_through_a_plugin_host(
    arcade_project: PluginProject, arcade_isolation: str, tmp_path: Path
) -> None:
    (tmp_path / "one").write_text("1")
    config = {{"directory": str(tmp_path)}}
    with arcade_project.loaded(config, isolation=arcade_isolation) as plugin:
        assert plugin.status.state == "running"
        [metric] = plugin.collect()
    assert metric.value == 1


def test_a_missing_directory_fails_the_call(
    arcade_project: PluginProject, arcade_isolation: str, tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing")
    with arcade_project.loaded({{"directory": missing}}, isolation=arcade_isolation) as plugin:
        with pytest.raises(PluginCallError, match="No such file or directory"):
            plugin.collect()
'''

_README = '''\
# {name}

An Arcade collector plugin: on every collect (the agent's collect interval; set
`"interval"` in `{module}/arcade-plugin.json` for one of its own) it reports
`{module}.entries`, the number of entries in a directory.

| config key | type | default | meaning |
| --- | --- | --- | --- |
| `directory` | string | `"."` (the agent's working directory) | the directory to count |

## Test

```sh
pip install -e '.[test]'     # arcade-fleet[testing]: pytest and Arcade's harness fixtures
pytest
```

The tests use Arcade's harness (`arcade_core.testing`): they build this project into a
wheel, check it the way the server does when it is published, install it into a throwaway
plugin host and call `collect` in-process and in a child process.

## Build, sign and publish

Agents that trust a key install only what it signed, so sign what you publish. Make a key
pair once (`release.key` stays with you, offline and backed up; `release.pub` goes to the
agents' `[[trust.keys]]`); the first signed publish of the name claims it for that key:

```sh
arcade keys generate release --dir ~/.arcade-keys
python -m build --wheel --no-isolation
arcade publish dist/{wheel_name}-0.1.0-py3-none-any.whl --sign ~/.arcade-keys/release.key
arcade install {name} --agent AGENT_ID --config '{{"directory": "/var/log"}}'
arcade metrics --agent AGENT_ID --name {module}.entries
```
'''


def render(name: str, *, exec_plugin: bool = False) -> dict[str, str]:
    """The files of a new plugin project named ``name``: relative path → text; with
    ``exec_plugin``, an exec plugin's (a sh script; files under ``bin/`` are executable).

    Raises ``ValueError`` saying what a valid name looks like."""
    if not _NAME.match(name):
        raise ValueError(
            f"{name!r} is not a plugin name: use letters, digits and single '-', '_' or '.' "
            "between them, starting with a letter (e.g. disk-entries)"
        )
    normalized = re.sub(r"[-_.]+", "-", name).lower()
    module = normalized.replace("-", "_")
    values = {
        "name": normalized,
        "module": module,
        "short": module,
        "cls": "".join(part.capitalize() for part in module.split("_")),
        "wheel_name": module,
    }
    if exec_plugin:
        return render_exec(values)
    return {
        "pyproject.toml": _PYPROJECT.format(**values),
        "README.md": _README.format(**values),
        f"{module}/__init__.py": _MODULE.format(**values),
        f"{module}/arcade-plugin.json": _MANIFEST.format(**values),
        f"tests/test_{module}.py": _TEST.format(**values),
    }


def _plugin_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = sub.add_parser("new", help="write a new plugin project (package, entry point, "
                         "manifest with a config schema, tests using the harness, README)")
    new.add_argument("name", metavar="NAME", help="the plugin's name, e.g. disk-entries")
    new.add_argument("--dir", type=Path, metavar="DIR",
                     help="where to write the project; must not exist or be empty [./NAME]")
    new.add_argument("--exec", action="store_true", dest="exec_plugin",
                     help="an exec plugin: a sh script speaking the JSON line protocol "
                          "(docs/protocol.md) instead of a Python package")


def _plugin(args: argparse.Namespace) -> None:
    try:
        files = render(args.name, exec_plugin=args.exec_plugin)
    except ValueError as exc:
        fail(str(exc), 2)
    target: Path = args.dir if args.dir is not None else Path(args.name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        fail(f"{target} exists and is not an empty directory: choose another --dir", 2)
    # Written beside the target and renamed into place: a failure leaves no half project.
    parent = target.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=parent))
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            if relative.startswith(EXECUTABLES):
                os.chmod(path, 0o755 & ~_umask())
        os.chmod(staging, 0o755 & ~_umask())
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except OSError as exc:
        fail(f"cannot write the project to {target}: {exc.strerror or exc}")
    module = next(p for p in files if p.endswith("/__init__.py")).split("/")[0]
    program = next((p for p in files if p.startswith(EXECUTABLES)), f"{module}/__init__.py")
    print(f"created {target}/: plugin {module.replace('_', '-')} "
          f"({program}, its manifest, tests, README)")
    print("next:", file=sys.stderr)
    tests = TEST_COMMAND if args.exec_plugin else "pip install -e '.[test]' && pytest"
    print(f"  cd {target} && {tests}", file=sys.stderr)
    print("  arcade keys generate release --dir ~/.arcade-keys    (once)", file=sys.stderr)
    print("  python -m build --wheel --no-isolation && "
          "arcade publish dist/*.whl --sign ~/.arcade-keys/release.key", file=sys.stderr)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


plugin = Command("plugin", "Start a new plugin project: arcade plugin new NAME.",
                 _plugin_args, _plugin, api=False)
