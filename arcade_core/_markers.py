"""The pluggy markers every Arcade plugin and hook specification uses.

The project name ``arcade`` ties hook implementations to Arcade's plugin manager; a
plugin decorates its methods with :data:`hookimpl`.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "arcade"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
