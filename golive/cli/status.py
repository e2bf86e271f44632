"""`golive status` (where a run stands, or every run) and `golive watch` (a succeeded run's post-deploy watch)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.text import Text

from golive.cli.arguments import run_id_checked
from golive.cli.console import err, exit_codes, out
from golive.exit_codes import EXIT_INVALID
from golive.shared.events import TrafficTargetTaken, WindowJudged
from golive.shared.run_summary import WatchRecord, summary_of
from golive.shared.settings import Settings
from golive.shared.story import story_of
from golive.views.as_json import emit, run_document, watch_document
from golive.views.lines import OUTCOME_STYLE, describe
from golive.views.standing import status_lines
from golive.views.watch import next_check_line

JSON_HELP = "Print JSON for scripts (docs/client.md has its shape)"


def status(
    run_id: Annotated[str | None, typer.Argument(help="One run (default: all runs)", callback=run_id_checked)] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Where a run stands (phase, step, outcome and why), or every run with its outcome and duration.
    --json: the run's summary as a JSON object (an array of them for every run)."""
    from golive.client import run_statuses  # the bus and the reports load only for the commands that use them
    if not run_id:
        return list_runs(as_json)
    with exit_codes():
        runs = asyncio.run(run_statuses(Settings(), run_id))
    if not runs:
        err.print(f"no run {run_id}", style="red")
        raise typer.Exit(EXIT_INVALID)
    if as_json:
        summary = summary_of(runs[0][1])
        if summary is None:  # a start the coordinator refused: events, but no run
            err.print(f"run {run_id} never started", style="red")
            raise typer.Exit(EXIT_INVALID)
        return emit(run_document(summary))
    if run_id:
        state, events = runs[0]
        story = story_of(events)  # what the live panel shows, read whole: the health word, not the saga's position
        out.print(Text(f"run {state.run_id}: plan {state.plan.name}, deployment {state.deploy_id} "
                       f"(previous {state.previous_deploy_id})"))
        for line in status_lines(story, datetime.now(UTC)):
            out.print(line)
        # one run per traffic target (services/traffic/target_lock.py): the hold ends with the run, unless it needs a human
        if taken := next((e.data for e in events if isinstance(e.data, TrafficTargetTaken)), None):
            hold = "released" if state.outcome in ("succeeded", "rolled_back") else "held by this run"
            out.print(f"traffic target: {taken.target} ({hold}; canary at {taken.weight}% when the run took it)")
        if state.paused_by and story.health == "Paused":
            held_next = state.held_next if state.held_next is not None and state.held_next < len(state.steps) else None
            held = f"; holding before {state.steps[held_next].name}" if held_next is not None else ""
            out.print(f"paused by {state.paused_by}{held}: `golive continue {state.run_id}`", style="bold yellow")
        if state.compensations and not state.finished:
            out.print("left to undo: " + ", ".join(c.undoes for c in reversed(state.compensations)))
        # the coordinator's own events are its decisions; a window verdict that is not a pass says its numbers
        # against the threshold ("p95 512 ms > 400 ms over 1,204 requests"); passes are only counted
        verdicts = Counter(w.verdict for w in story.windows)
        if verdicts:
            out.print("windows judged: " + ", ".join(f"{verdicts[v]} {v}" for v in ("pass", "fail", "inconclusive")))
        decisions = [e for e in events if e.source == "/golive/coordinator"
                     and not (isinstance(e.data, WindowJudged) and e.data.verdict == "pass")]
        out.print("last decisions:")
        for envelope in decisions[-10:]:
            style, text = describe(envelope, hints=False)  # a pause's `golive continue` is in its paused line above
            out.print(f"  {envelope.time:%H:%M:%S} {text}", style=style or None)
        return


def list_runs(as_json: bool = False) -> None:
    """Every run in a line, from the run history (one summary per run: never the event stream)."""
    from golive.client import run_summaries
    with exit_codes():
        runs = asyncio.run(run_summaries(Settings()))
    if as_json:
        return emit([run_document(run) for run in runs])
    if not runs:
        err.print("no runs yet")
        return
    # one line per run, never wrapped: people grep it and copy run ids out of it
    out.print(f"{'started':<17} {'run':<30} {'plan':<16} {'deployment':<14} {'state':<13} duration / reason", style="bold")
    for run in runs:
        ended = run.duration_s is not None and run.outcome != "running"  # a retried run is undoing again
        detail = f"{run.duration_s:.0f}s: {run.reason}" if ended else run.reason
        out.print(f"{run.started_at:%Y-%m-%d %H:%M} {run.run_id:<30} {run.plan:<16} {run.deploy_id:<14} "
                  f"{run.state:<13} {detail}", style=OUTCOME_STYLE.get(run.state))


def watch(
    run_id: Annotated[str | None, typer.Argument(help="One run (default: every run with a watch)", callback=run_id_checked)] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """The post-deploy watch (plan `post_deploy`) of a succeeded run: checks done, the last result, the next
    check and the breaches; without RUN, one line per watched run. --json: the watch as a JSON object (an array
    of them without RUN)."""
    from golive.client import watch_states  # the bus and the reports load only for the commands that use them
    with exit_codes():
        watches = asyncio.run(watch_states(Settings(), run_id))
    if as_json:
        from golive.services.coordinator.history import watch_record

        records = [w if isinstance(w, WatchRecord) else watch_record(w) for w in watches]
        documents = [watch_document(r) for r in records if r is not None]
        if run_id and not documents:
            err.print(f"run {run_id} has no post-deploy watch", style="red")
            raise typer.Exit(EXIT_INVALID)
        return emit(documents[0] if run_id else documents)
    if not watches:
        err.print(f"run {run_id} has no post-deploy watch (it did not succeed, or its plan has no post_deploy)"
                  if run_id else "no post-deploy watches yet", style="red" if run_id else None)
        raise typer.Exit(EXIT_INVALID if run_id else 0)
    for w in watches:
        where = "ended" if w.ended else "watching"
        out.print(f"run {w.run_id}: {where} {w.deploy_id} since {w.started_at:%Y-%m-%d %H:%M:%S}, until "
                  f"{w.ends_at:%Y-%m-%d %H:%M:%S}; checks {w.checks_done}/{w.checks_planned}, breaches {w.breaches}, "
                  f"summaries {w.summaries}", style="bold red" if w.breaches else "bold")
        if not run_id:
            continue
        if w.last is not None:
            out.print(f"last check ({w.last.index + 1}): {'passed' if w.last.passed else 'FAILED'}: {w.last.summary}",
                      style="green" if w.last.passed else "red")
            for p in w.last.probes:
                out.print(f"  {p.probe}: p95 {p.p95_ms:.1f} ms, error rate {p.error_rate_pct:g}% over {p.count + p.errors} requests")
        if (next_check := next_check_line(w, datetime.now(UTC))) is not None:
            out.print(next_check)
