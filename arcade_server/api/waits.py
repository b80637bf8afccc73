"""``?wait=SECONDS`` of the desired-state routes: hold the answer until the agents say the
change is done, or the time is up.

What "done" means is the change's own *probe*, a service read that takes ``{agent: new
revision}`` and answers, per agent, its outcome or ``None`` while it has none:

* install (one agent or a selector): a final report (``running``/``failed``) for the new
  version at the new revision or later
  (:func:`~arcade_server.services.plugin_states.install_outcomes`);
* config change: the same for the version the agent runs, at the new revision (the agent
  restarted the plugin with the new config, or says why it could not);
* uninstall (one agent or a selector): the agent applied the new revision and reports no state
  for the plugin any more (:func:`~arcade_server.services.plugin_states.removal_outcomes`).

The wait wakes on reports received by this process and re-reads the agents that reported,
and re-reads every pending agent every ``wait_poll_interval`` (reports may reach another
replica): a wait over a fleet of N agents reads O(N) rows in all, not N per report. The routes
answer 200 when every agent is done, else 202 with ``"timed_out": true`` and the state so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Query

from ..errors import Hint, Invalid
from ..state import ServerState
from .schemas import stated

__all__ = ["Outcomes", "Probe", "Wait", "await_outcomes", "check_wait"]

#: Per agent: its outcome, or ``None`` while it has not reported the change done.
Outcomes = dict[str, dict[str, Any] | None]
#: A service read (run with :meth:`Database.read`) from ``{agent: revision}`` to outcomes.
Probe = Callable[..., Outcomes]

Wait = Annotated[
    float | None,
    Query(description="seconds to wait for the agent(s) to report the change done (an "
          "install: running or failed; a config change: applied; an uninstall: removed), "
          "at most the server's max_wait; 200 when done, 202 with timed_out when the time "
          "ran out", json_schema_extra=stated(minimum=0)),
]

_WAIT = Hint("?wait", "--wait")


def check_wait(state: ServerState, wait: float | None) -> float:
    """The seconds to wait (0: none); 422 outside 0 … ``max_wait``."""
    if wait is None:
        return 0.0
    if not 0 <= wait <= state.settings.max_wait:
        raise Invalid(f"{_WAIT} must be between 0 and {state.settings.max_wait:g} seconds",
                      hints=[_WAIT])
    return wait


async def await_outcomes(state: ServerState, revisions: dict[str, int], probe: Probe,
                         wait: float) -> tuple[Outcomes, bool]:
    """Wait up to ``wait`` s until ``probe`` has an outcome for every agent; return (outcomes,
    all done)."""
    deadline = time.monotonic() + wait
    poll = state.settings.wait_poll_interval
    pending = dict(revisions)
    outcomes: Outcomes = dict.fromkeys(revisions)
    with state.hub.waiter(list(revisions)) as waiter:
        check: list[str] = list(pending)
        next_full = time.monotonic() + poll
        while True:
            if check:
                found = await state.db.read(probe, {a: pending[a] for a in check})
                for agent_id, outcome in found.items():
                    if outcome is not None:
                        outcomes[agent_id] = outcome
                        pending.pop(agent_id, None)
            now = time.monotonic()
            remaining = deadline - now
            if not pending or remaining <= 0:
                return outcomes, not pending
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), timeout=max(0, min(remaining,
                                                                         next_full - now)))
            reported = waiter.take()
            check = [agent_id for agent_id in reported if agent_id in pending]
            if time.monotonic() >= next_full:
                # The agents connected here report here, and each report wakes the waiter:
                # only the others (connected to another replica, or not at all) are re-read.
                hub = state.hub
                check += [agent_id for agent_id in pending
                          if agent_id not in reported and not hub.connected(agent_id)]
                next_full = time.monotonic() + poll
