"""A run's end: its outcome, said once as RunFinished (once per `golive retry` round), with what is left to undo.

succeeded (every step passed), rolled_back (a step failed and every compensation ran) or needs_human (a compensation
failed: the compensations not done are named, newest first, for the person who takes over).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from golive.services.coordinator.saga_state import EmitEvent, Output, RunState, round_suffix
from golive.shared.events import Outcome, RunFinished


def finish(state: RunState, outcome: Outcome, reason: str, now: datetime) -> tuple[RunState, list[Output]]:
    """End the run with ``outcome``: nothing is in flight any more, and RunFinished says why."""
    duration = (now - state.started_at).total_seconds()
    left = [c.undoes for c in reversed(state.compensations)] if outcome == "needs_human" else []
    state = replace(state, outcome=outcome, in_flight=None, deadline=None)
    outputs: list[Output] = [
        EmitEvent(f"{state.run_id}/finished{round_suffix(state, '/')}",
                  RunFinished(outcome=outcome, reason=reason, duration_s=duration, left_to_undo=left))
    ]
    return state, outputs
