"""The agent's ``[drift]`` settings: how often installed environments are checked, and what
happens when one drifted.

In the agent's config file::

    [drift]
    check_interval = 60        # seconds: every environment's stat pass, spread over this time
    hash_interval = 3600       # seconds: every environment hashed in full, spread likewise
    policy = "repair"          # or "report": mark it drifted, leave it as it is

``ARCADE_AGENT_DRIFT`` takes the same table as JSON (``{"policy": "report"}``). An interval of
0 turns that pass off (the check at start still runs). Read by
:class:`~arcade_agent.settings.AgentSettings` (its ``drift`` field) through
:func:`drift_settings`; used by :mod:`arcade_agent.drift_watch`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ._values import table
from .errors import AgentConfigError

__all__ = ["DriftPolicy", "DriftSettings", "drift_settings"]


class DriftPolicy(StrEnum):
    """What the agent does with a drifted plugin."""

    #: Rebuild the environment from the verified cache (or the server) and load it again.
    REPAIR = "repair"
    #: Report it ``drifted`` and leave it running as it is.
    REPORT = "report"


@dataclass(frozen=True, slots=True)
class DriftSettings:
    """``[drift]``: see the module."""

    check_interval: float = 60.0
    hash_interval: float = 3600.0
    policy: DriftPolicy = DriftPolicy.REPAIR

    def __post_init__(self) -> None:
        for name in ("check_interval", "hash_interval"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise AgentConfigError(f"setting 'drift.{name}': {value!r} is not a number "
                                       "of seconds >= 0 (0 turns the pass off)")


def drift_settings(value: Any) -> DriftSettings:
    """``[drift]`` from a config file's table or JSON text (``ARCADE_AGENT_DRIFT``);
    :class:`AgentConfigError` naming the key and what it takes (the caller adds where from)."""
    if isinstance(value, DriftSettings):
        return value
    value = table(value, bad_json='[drift] must be a JSON object, e.g. {"policy": "report"}',
                  not_a_table='[drift] must be a table, e.g. [drift] policy = "report"')
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        key = str(key).replace("-", "_")
        if key in ("check_interval", "hash_interval"):
            if isinstance(item, bool) or not isinstance(item, int | float | str):
                raise AgentConfigError(f"'drift.{key}' must be a number of seconds")
            try:
                kwargs[key] = float(item)
            except ValueError:
                raise AgentConfigError(
                    f"'drift.{key}' = {item!r} is not a number of seconds") from None
        elif key == "policy":
            try:
                kwargs[key] = DriftPolicy(str(item))
            except ValueError:
                raise AgentConfigError(f"'drift.policy' = {item!r}; expected "
                                       '"repair" or "report"') from None
        else:
            raise AgentConfigError(f"unknown setting 'drift.{key}'; [drift] takes "
                                   "check_interval, hash_interval and policy")
    return DriftSettings(**kwargs)
