"""How run events read on a terminal: one line each, saying what happened and why."""

from __future__ import annotations

from rich.console import Console

from golive.shared.envelope import Envelope
from golive.shared.events import (
    AbortRequested,
    ApprovalGranted,
    CommandFailed,
    CompensationStarted,
    ContinueRequested,
    MigrationProgress,
    MigrationsApplied,
    MigrationsReverted,
    NotificationFailed,
    NotificationSent,
    OldTransactionsFound,
    PauseRequested,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    ProbeWindow,
    RetryDue,
    RetryRequested,
    RunFinished,
    RunStarted,
    StageJudged,
    StepFailed,
    StepRetrying,
    StepTimedOut,
    TrafficDrift,
    TrafficPromoted,
    TrafficRolledBack,
    TrafficShifted,
    TrafficTargetTaken,
    WatchBreached,
    WatchCheckCompleted,
    WatchEnded,
    WatchStarted,
    WatchSummary,
    WindowClosing,
    WindowJudged,
)
from golive.shared.judge import SHOWN

OUTCOME_STYLE = {"succeeded": "bold green", "rolled_back": "bold yellow", "needs_human": "bold red"}
_COLOUR = {"pass": "green", "fail": "red", "inconclusive": "yellow"}  # of a probe's verdict


def terminal(stderr: bool = False) -> Console:
    """A console for golive's output, with Rich markup off: what golive prints is mostly someone else's text (plan
    and step names, reasons, SQL, a blocker's query), so a ``[/oops]`` in it is printed as typed instead of crashing
    the CLI, and ``[bold red]`` does not restyle it. Styles go in ``style=`` or in ``Text`` objects."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False)


def describe(envelope: Envelope, *, hints: bool = True) -> tuple[str, str]:
    """(rich style, text) for one event. ``hints``: the line also says what a person may do next (`golive continue`
    after a pause), for a feed read as the run goes; a view that says where the run stands (`golive status`) says
    that itself, once, and reads its events without."""
    d = envelope.data
    match d:
        case RunStarted():
            return "bold", f"run {envelope.runid} started: plan {d.plan_name}, deployment {d.deploy_id}"
        case PhaseStarted():
            return "cyan", f"[{d.phase}] {d.step}: {d.detail}"
        case MigrationsApplied():
            return "green", "migrations: " + ", ".join(f"{r.name} {r.action} in {r.seconds:.2f}s" for r in d.results)
        case MigrationsReverted():
            return "yellow", "migrations reverted: dropped " + (", ".join(d.dropped) or "nothing")
        case ProbeCompleted():
            return _COLOUR[d.finding], f"probe {SHOWN[d.finding]}: {d.summary}"
        case ProbesCompleted():
            stopped = f" (stopped: {d.stopped})" if d.stopped else ""
            return _COLOUR[d.finding], f"probes {SHOWN[d.finding]}: {d.summary}{stopped}"
        case TrafficShifted():
            return "green", f"traffic: {d.weight}% to {d.canary} via {d.provider} (read back {d.verified_weight}%)"
        case ProbeWindow():
            w = d.stats
            return "dim", (f"{d.probe}{' (baseline)' if d.target == 'baseline' else ''} window {d.index}: "
                           f"p95 {w.p95_ms:.1f} ms, {w.errors} error(s) over {w.count + w.errors} requests")
        case MigrationProgress():
            pct = f" {d.overall_percent:.0f}%" if d.overall_percent is not None else ""
            waiting = f", waiting on pid {d.blocking_pid}: {d.blocking_query}" if d.blocking_pid else ""
            return "dim", f"migration {d.name}: {d.status} {d.phase}{pct}{waiting}"
        case OldTransactionsFound():
            return "yellow", (f"{len(d.transactions)} transaction(s) older than {d.threshold_s:g}s could block the build "
                              f"(policy: {d.policy})")
        case TrafficDrift():
            return "bold red", (f"traffic drift: {d.provider} sends {d.observed_weight}% to {d.canary}, golive set "
                                f"{d.expected_weight}%: refused to shift to {d.requested_weight}%")
        case TrafficPromoted():
            return "green", f"{d.canary} promoted via {d.provider} (read back {d.verified_weight}%)"
        case TrafficRolledBack() if not d.changed:
            return "yellow", (f"traffic left as it was: this run never moved it; canary at {d.verified_weight}% "
                              "(read back)")
        case TrafficRolledBack():
            return "yellow", f"traffic rolled back to {d.to or 'stable'}: canary at {d.verified_weight}% (read back)"
        case TrafficTargetTaken():
            return "dim", (f"traffic target {d.target} held by this run until it ends; canary {d.canary} at "
                           f"{d.weight}% (read back)")
        case NotificationSent():
            return "dim", f"notified {d.sink}: {d.kind}"
        case NotificationFailed():
            return "yellow", f"could not notify {d.sink} of {d.kind} after {d.attempts} attempt(s): {d.reason}"
        case CommandFailed():
            return "red", f"{d.service} could not do {d.command_type}: {d.reason}"
        case StepFailed():
            # the coordinator's reason opens with the same words: "stage2:hold failed: ..."
            return "bold red", f"step {d.step} failed: {d.reason.removeprefix(f'{d.step} failed: ')}"
        case ApprovalGranted():
            stage = f"stage {d.stage}" if d.stage else "the gate"
            return "bold green", f"{stage} approved by {d.approved_by}" + (f": {d.comment}" if d.comment else "")
        case WindowClosing():
            return "bold yellow", f"maintenance window closes at {d.ends_at:%H:%M}: rolling back while it fits"
        case PauseRequested():
            hint = f" (`golive continue {envelope.runid}` lets it go on)" if hints else ""
            return "bold yellow", f"paused by {d.requested_by}: {d.reason}{hint}"
        case ContinueRequested():
            return "bold green", f"continued by {d.requested_by}" + (f": {d.reason}" if d.reason else "")
        case RetryRequested():
            return "bold yellow", f"compensations retried by {d.requested_by}" + (f": {d.reason}" if d.reason else "")
        case WindowJudged():
            # the reason already says where, which window and why: "stage 2 (50%): q window 4 failed: p95 ..."
            style = {"pass": "dim", "fail": "bold red" if d.guard else "red", "inconclusive": "yellow"}[d.verdict]
            return style, d.reason
        case StageJudged():
            word = "passed" if d.verdict == "pass" else "FAILED"
            return ("bold green" if d.verdict == "pass" else "bold red"), f"stage {d.stage} ({d.weight}%) {word}: {d.reason}"
        case AbortRequested():
            return "bold yellow", f"abort requested by {d.requested_by}: {d.reason}"
        case WatchStarted():
            return "cyan", (f"[post-deploy] watching {d.deploy_id} every {d.health_every_s:g}s until "
                            f"{d.ends_at:%Y-%m-%d %H:%M:%S}: {', '.join(d.checks) or 'no checks'}")
        case WatchCheckCompleted():
            return ("green" if d.passed else "red"), f"[post-deploy] check {d.index + 1} {'passed' if d.passed else 'FAILED'}: {d.summary}"
        case WatchBreached():
            return "bold red", f"[post-deploy] breach: {d.reason}"
        case WatchSummary():
            return "bold", f"[post-deploy] summary {d.index + 1}: {d.summary}"
        case WatchEnded():
            return "bold", f"[post-deploy] watch ended: {d.checks} check(s), {d.breaches} breach(es); {d.reason}"
        case StepRetrying():
            return "yellow", f"{d.step} attempt {d.attempt} failed, trying again at {d.retry_at:%H:%M:%S}: {d.reason}"
        case RetryDue():
            return "dim", f"{d.step}: attempt {d.attempt}"
        case StepTimedOut():
            return "bold red", f"{d.step} timed out: no answer by {d.deadline:%H:%M:%S}"
        case CompensationStarted():
            return "yellow", f"[compensating] undo {d.undoes}"
        case RunFinished():
            extra = f"; left to undo: {', '.join(d.left_to_undo)}" if d.left_to_undo else ""
            return OUTCOME_STYLE.get(d.outcome, "bold"), f"run {d.outcome} after {d.duration_s:.1f}s: {d.reason}{extra}"
    return "", f"{envelope.type}"
