'''The files of ``arcade plugin new NAME --exec``: an exec plugin project (docs/protocol.md).

A POSIX sh script that pushes the machine's uptime (``/proc/uptime``) every interval over
the JSON line protocol, its manifest (``"exec"``), a ``pyproject.toml`` built by
``arcade_core.exec_backend`` (the script goes to the wheel's ``.data/scripts/``), tests that
drive the installed program with Arcade's harness (``PluginProject.exec_process``, every line
checked against the protocol's schemas) and a README. Replace the script with any executable
(a compiled one needs ``platform-tag`` in ``[tool.arcade]``); the rest stays.
'''

from __future__ import annotations

__all__ = ["EXECUTABLES", "TEST_COMMAND", "render_exec"]

#: How the project's tests run (it is not installed itself: the harness builds its wheel).
TEST_COMMAND = "pip install 'arcade-fleet[testing]' && pytest"

#: The rendered files that must be executable, by their path pattern's directory.
EXECUTABLES = "bin/"

_PYPROJECT = '''\
[build-system]
# An exec plugin: Arcade's backend writes the wheel, with bin/{name} as the program.
requires = ["arcade-fleet"]
build-backend = "arcade_core.exec_backend"

[project]
name = "{name}"
version = "0.1.0"
description = "An Arcade exec plugin: the machine's uptime, pushed by a POSIX sh script."
readme = "README.md"
dependencies = []

# Exactly one entry point in this group: the package holding arcade-plugin.json.
[project.entry-points."arcade.plugins"]
{short} = "{module}"

[tool.arcade]
executable = "bin/{name}"   # installed as bin/{name} of the plugin's environment
platform-tag = "any"        # a compiled program: the platform it runs on, e.g. linux_x86_64

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "--import-mode=importlib"
'''

_SCRIPT = '''\
#!/bin/sh
# {name}: an Arcade exec plugin (docs/protocol.md). Pushes {module}.uptime (seconds, from
# /proc/uptime) every `interval` seconds; a new config applies at once; shutdown or the end
# of stdin ends it. This shell reads stdin; a background loop pushes metrics, another sends a
# heartbeat every 5 s. Each loop kills its sleep on TERM ($!: set by `sleep &` itself).
set -u

say() {{ printf '%s\\n' "$1"; }}

tick() {{
    : &
    trap 'kill "$!" 2>/dev/null; exit 0' TERM
    while :; do
        read -r up _idle < /proc/uptime
        m="{{\\"name\\":\\"{module}.uptime\\",\\"value\\":$up,\\"unit\\":\\"s\\"}}"
        say "{{\\"type\\":\\"metric\\",\\"data\\":$m}}"
        sleep "$1" &
        wait "$!"
    done
}}

beat() {{
    : &
    trap 'kill "$!" 2>/dev/null; exit 0' TERM
    while :; do
        sleep 5 &
        wait "$!"
        say '{{"type":"heartbeat"}}'
    done
}}

stop() {{
    for pid in $ticker $beater; do kill "$pid" 2>/dev/null; done
    for pid in $ticker $beater; do wait "$pid" 2>/dev/null; done
    exit 0
}}

ticker=""
say '{{"type":"hello","protocol":1,"hooks":[]}}'
beat & beater=$!
while IFS= read -r line; do
    line=$(printf '%s' "$line" | tr -d ' \\t\\r')
    case $line in
        *'"type":"config"'*)
            interval=$(printf '%s' "$line" |
                sed -n 's/.*"interval":\\([0-9][0-9.]*\\)[,}}].*/\\1/p')
            if [ -n "$interval" ]; then
                if [ -n "$ticker" ]; then kill "$ticker"; wait "$ticker"; fi
                tick "$interval" & ticker=$!
            else
                say '{{"type":"log","level":"warning","message":"config without an interval"}}'
            fi ;;
        *'"type":"shutdown"'*) stop ;;
    esac
done
stop
'''

_MANIFEST = '''\
{{
  "description": "The machine's uptime in seconds, pushed every interval by a sh script.",
  "type": "collector",
  "exec": "{name}",
  "interval": 10,
  "config_schema": {{"type": "object", "properties": {{}}, "additionalProperties": false}}
}}
'''

_INIT = '''\
"""{name} is an exec plugin: its program is bin/{name}; this package carries its manifest."""
'''

_TEST = '''\
"""{name}'s tests, with Arcade's harness: the wheel as publishing checks it, then the
installed program spoken to over the protocol (every line checked against its schema)."""

import time

from arcade_core.testing import PluginProject


def test_the_wheel_is_an_exec_plugin(arcade_project: PluginProject) -> None:
    assert arcade_project.check() == {{}}
    assert arcade_project.manifest.exec == "{name}"


def test_it_pushes_uptime_and_takes_a_new_interval(arcade_project: PluginProject) -> None:
    with arcade_project.exec_process() as plugin:
        plugin.send({{"type": "config", "data": {{"interval": 0.1}}}})
        assert plugin.receive() == {{"type": "hello", "protocol": 1, "hooks": []}}
        metric = plugin.receive_until("metric")["data"]
        assert metric["name"] == "{module}.uptime" and metric["value"] > 0
        plugin.send({{"type": "config", "data": {{"interval": 3600}}}})
        plugin.receive_until("metric")  # the first round of the new interval
        started = time.monotonic()
        assert plugin.receive_until("heartbeat", timeout=15) == {{"type": "heartbeat"}}
        assert time.monotonic() - started < 10
        assert plugin.shutdown() == 0
'''

_README = '''\
# {name}

An Arcade **exec plugin**: `bin/{name}`, a POSIX sh script speaking Arcade's JSON line
protocol (docs/protocol.md in Arcade's repository), pushes `{module}.uptime` (seconds) every
interval (10 s unless the assignment sets one: `arcade install {name} --interval 5`).
Replace the script with any executable that speaks the protocol; for a compiled one set
`platform-tag` in `[tool.arcade]` of `pyproject.toml`.

## Test

```sh
pip install 'arcade-fleet[testing]'   # pytest, build and Arcade's harness fixtures
pytest
```

The tests build the wheel, check it as publishing does, install it into a throwaway plugin
host and talk to the installed program over the protocol, checking every line it writes
against the protocol's JSON Schemas.

## Build, sign and publish

```sh
arcade keys generate release --dir ~/.arcade-keys
python -m build --wheel --no-isolation
arcade publish dist/{wheel_name}-0.1.0-py3-none-any.whl --sign ~/.arcade-keys/release.key
arcade install {name} --agent AGENT_ID
arcade metrics --agent AGENT_ID --name {module}.uptime
```
'''


def render_exec(values: dict[str, str]) -> dict[str, str]:
    """The files of an exec plugin project: relative path → text (``values`` as
    :func:`arcade_server.cli._template.render` computes them)."""
    return {
        "pyproject.toml": _PYPROJECT.format(**values),
        "README.md": _README.format(**values),
        f"bin/{values['name']}": _SCRIPT.format(**values),
        f"{values['module']}/__init__.py": _INIT.format(**values),
        f"{values['module']}/arcade-plugin.json": _MANIFEST.format(**values),
        f"tests/test_{values['module']}.py": _TEST.format(**values),
    }
