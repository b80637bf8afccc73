"""Arcade's public test harness for plugin authors.

Test a plugin the way Arcade runs it: build the project into a wheel, check the wheel as
``arcade publish`` does, install it with its dependency wheels into a throwaway
:class:`~arcade_core.PluginHost`, and call its hooks in-process and with
``isolation="process"``::

    from arcade_core.testing import PluginProject

    project = PluginProject("path/to/arcade-uptime", tmp_path)
    project.check({"unit": "minutes"})               # the wheel, its manifest, a config
    with project.loaded({"unit": "minutes"}, isolation="process") as plugin:
        [metric] = plugin.collect()

With pytest (``pip install 'arcade-fleet[testing]'``) the fixtures of
:mod:`arcade_core.testing.pytest_plugin` do this for the project a test file lives in:
``arcade_project`` (its :class:`PluginProject`, wheel built once per session),
``arcade_isolation`` (runs the test once ``"inline"`` and once ``"process"``) and
``arcade_module`` (the plugin's module imported from the sources, removed afterwards).
An exec plugin (docs/protocol.md) is driven over its line protocol instead:
``PluginProject.exec_process()`` installs the wheel and starts its program in an
:class:`ExecProcess`, which checks every line against the protocol's schemas.
docs/plugin-authoring.md ("Testing a plugin") shows a complete test.

Names are imported on first use, so loading the pytest plugin costs next to nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_attributes

if TYPE_CHECKING:
    from ._build import HarnessError, build_wheel
    from ._exec import ExecProcess
    from ._project import LoadedPlugin, PluginProject

_LAZY = {
    "ExecProcess": "_exec",
    "HarnessError": "_build",
    "build_wheel": "_build",
    "LoadedPlugin": "_project",
    "PluginProject": "_project",
}

__all__ = ["ExecProcess", "HarnessError", "LoadedPlugin", "PluginProject", "build_wheel"]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
