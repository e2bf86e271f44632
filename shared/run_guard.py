"""Does a work command still apply to its run? One rule, over the run's lifecycle events.

A service that changes production (the migrator, traffic) works only for a run that is open: its
run_started is in the event log and it has not finished. The exceptions are the ones the saga itself makes:

- compensations run before run_finished, so they are simply work of an open run;
- `golive retry` of a needs_human run records retry_requested after that run_finished: from then on the
  run is open again, until its next run_finished;
- the post-deploy watch sends prober commands after a succeeded run_finished: a prober command applies
  while the run's watch_started is in the log and its watch_ended is not.

Everything else (a redelivered or replayed command of a finished run, a command for a run nobody started)
is refused with the reason. The rule needs only the last event of each lifecycle type, in stream order;
``lifecycle_subjects`` names where they are and the bus reads them (shared/bus.py, ``guard_runs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from golive.shared.envelope import Envelope
from golive.shared.events import RetryRequested, RunFinished, RunStarted, WatchEnded, WatchStarted
from golive.shared.subjects import Subjects

LIFECYCLE = (RunStarted, RunFinished, RetryRequested, WatchStarted, WatchEnded)


@dataclass(frozen=True)
class Refusal:
    """Why a command does not apply. ``run_known``: the run exists (the refusal is recorded as one of its
    events); otherwise there is no run to record it in, and the command is dead-lettered."""

    reason: str
    run_known: bool


def lifecycle_subjects(subjects: Subjects, run_id: str) -> list[str]:
    """The coordinator's subjects that hold a run's lifecycle events (``run_id``: one subject token)."""
    return [subjects.event(run_id, "coordinator", model.short_name()) for model in LIFECYCLE]


def work_refusal(command_type: str, run_id: str, lifecycle: Sequence[Envelope]) -> Refusal | None:
    """Why the command of type ``command_type`` must not run for ``run_id``, or None when it may.

    ``lifecycle``: the run's lifecycle events in stream order (the last of each type is enough)."""
    action = ".".join(command_type.split(".")[2:4])  # golive.cmd.traffic.shift.v1 -> traffic.shift
    if not any(isinstance(e.data, RunStarted) for e in lifecycle):
        return Refusal(f"{action} refused: no run {run_id} (it has no run_started in the event log)", run_known=False)
    last_finished, open_again = None, False
    watching = False
    for envelope in lifecycle:
        data = envelope.data
        if isinstance(data, RunFinished):
            last_finished, open_again = data, False
        elif isinstance(data, RetryRequested) and last_finished is not None:
            open_again = True
        elif isinstance(data, WatchStarted):
            watching = True
        elif isinstance(data, WatchEnded):
            watching = False
    if last_finished is None or open_again:
        return None
    if action.startswith("prober.") and last_finished.outcome == "succeeded" and watching:
        return None  # the post-deploy watch
    return Refusal(f"{action} refused: run {run_id} has ended ({last_finished.outcome}); nothing more runs for it",
                   run_known=True)
