"""The `golive` command: run, watch and operate go-lives; run the services and the embedded stack."""

from __future__ import annotations

import asyncio
import getpass
import signal
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from golive.live import watching
from golive.render import OUTCOME_STYLE, describe, terminal
from golive.watch import EXIT_INVALID, EXIT_UNREACHABLE, BusUnreachable, new_run_id, show_events, start_and_watch
from services.coordinator.window import start_refusal
from shared.envelope import Envelope
from shared.ids import InvalidId, check_id
from shared.secrets import redact
from shared.settings import Settings
from shared.subjects import SERVICES

app = typer.Typer(help="golive: production go-lives that roll back by themselves.", no_args_is_help=True,
                  add_completion=False, rich_markup_mode=None)
plan_app = typer.Typer(help="Work with plan files.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")
docs_app = typer.Typer(help="Regenerate the documents generated from the code.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")
out = terminal()  # markup off: every line below may carry a plan's, a service's or a database's text
err = terminal(stderr=True)


def _valid_id(what: str):
    """A typer callback: a run or deployment id is checked as the command line is read, before anything is sent
    or written (it becomes a subject token and a folder name): exit 2 with the rule."""
    def check(value: str | None) -> str | None:
        if value is not None:
            try:
                check_id(value, what)
            except InvalidId as exc:
                err.print(str(exc), style="red")
                raise typer.Exit(EXIT_INVALID) from None
        return value

    return check


_run_id, _deployment_id = _valid_id("run id"), _valid_id("deployment id")


def _printer(as_json: bool):
    def echo(envelope: Envelope) -> None:
        if as_json:
            print(envelope.to_json().decode(), flush=True)
            return
        style, text = describe(envelope)
        # a styled Text, not print(style=): under the live panel the style would also paint the panel
        out.print(Text(f"{envelope.time:%H:%M:%S} {text}", style=style or ""))

    return echo


@contextmanager
def _exit_codes():
    """What a command that talks to the bus can meet, as its exit code with the reason on stderr."""
    from golive.watch import RunNotControllable
    from shared.plan_versions import PlanVersionError

    try:
        yield
    except RunNotControllable as exc:
        err.print(str(exc), style="red")
        raise typer.Exit(EXIT_INVALID) from None
    except PlanVersionError as exc:  # a stored run's plan this golive cannot read (a newer golive started it)
        err.print(f"cannot read a run's plan: {exc}", style="red")
        raise typer.Exit(EXIT_INVALID) from None
    except BusUnreachable as exc:
        err.print(str(exc), style="red")
        raise typer.Exit(EXIT_UNREACHABLE) from None


def _checked_plan(path: Path):
    """The plan at ``path`` after every check, or exit 2 listing every problem."""
    from golive.plan_check import check_plan
    from services.coordinator.plan import PlanError

    try:
        return check_plan(path)
    except PlanError as exc:
        for problem in exc.problems:
            err.print(f"plan error: {redact(problem)}", style="red")
        raise typer.Exit(EXIT_INVALID) from None


@app.command()
def run(
    plan: Annotated[Path, typer.Argument(help="Plan file (YAML)")],
    deploy_id: Annotated[str, typer.Option(help="The new deployment to roll out", callback=_deployment_id)] = "canary",
    previous_deploy_id: Annotated[str | None, typer.Option(help="The deployment to roll back to",
                                                           callback=_deployment_id)] = "stable",
    run_id: Annotated[str | None, typer.Option(help="Run id (default: generated)", callback=_run_id)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as CloudEvents JSON lines")] = False,
    force_window: Annotated[bool, typer.Option("--force-window", help="Start outside the plan's maintenance window")] = False,
    time_scale: Annotated[float, typer.Option("--time-scale", min=1, help="Rehearse with every duration of the plan "
                                              "divided by this (golive/rehearsal.py); 1: real time")] = 1.0,
) -> None:
    """Start a go-live and watch it. Exit 0 succeeded, 1 rolled back, 2 invalid input, 3 needs a human,
    4 bus unreachable. Ctrl-C stops watching; the run goes on (watch it again with `golive events --follow`)."""
    checked = _checked_plan(plan)
    if time_scale != 1:
        from golive.rehearsal import compress

        checked = compress(checked, time_scale)
    if why := start_refusal(checked.window.maintenance, datetime.now(UTC), force_window):
        err.print(f"nothing started: {why}", style="red")
        raise typer.Exit(EXIT_INVALID)
    run_id = run_id or new_run_id()
    err.print(f"run {run_id}: {checked.name}, deployment {deploy_id} (previous {previous_deploy_id})", style="bold")
    try:
        with _exit_codes(), watching(out, as_json, _printer(as_json)) as echo:
            code = asyncio.run(start_and_watch(Settings(), checked, deploy_id, previous_deploy_id, run_id,
                                               echo, force_window=force_window))
    except KeyboardInterrupt:
        err.print(f"stopped watching; run {run_id} goes on: `golive events --run {run_id} --follow`")
        raise typer.Exit(130) from None
    raise typer.Exit(code)


@app.command()
def events(
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run's events", callback=_run_id)] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print CloudEvents JSON lines")] = False,
) -> None:
    """Show the event stream (all runs, or one with --run), as lines or as CloudEvents JSON."""
    try:
        with _exit_codes():
            code = asyncio.run(show_events(Settings(), run_id, follow, _printer(as_json)))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    if code:
        err.print("no events" + (f" for run {run_id}" if run_id else ""))
    raise typer.Exit(code)


@app.command()
def abort(
    run_id: Annotated[str, typer.Argument(help="The run to abort", callback=_run_id)],
    reason: Annotated[str, typer.Option(help="Why (recorded in the run's events, sent to Slack)")],
) -> None:
    """Abort a run now: its compensations start at once. Follows the run to its end and exits with its code
    (1 rolled back, 3 needs a human); 2 when the run is unknown or already ended."""
    from golive.watch import abort_run

    settings = Settings()
    who = settings.nats_user or getpass.getuser()
    with _exit_codes():
        code = asyncio.run(abort_run(settings, run_id, reason, who, _printer(False)))
    raise typer.Exit(code)


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="The run waiting at a gate", callback=_run_id)],
    stage: Annotated[int | None, typer.Option(help="The stage you approve (guards against approving the wrong one)")] = None,
    comment: Annotated[str, typer.Option(help="Recorded with the approval")] = "",
) -> None:
    """Open the gate a run waits at (a stage with `approval: true`). Exit 2 if it waits at no gate."""
    from golive.watch import approve_run

    settings = Settings()
    with _exit_codes():
        gate = asyncio.run(approve_run(settings, run_id, stage, settings.nats_user or getpass.getuser(), comment))
    out.print(f"approved {gate} of run {run_id}")


@app.command()
def pause(
    run_id: Annotated[str, typer.Argument(help="The run to hold", callback=_run_id)],
    reason: Annotated[str, typer.Option(help="Why (recorded in the run's events)")],
) -> None:
    """Hold a run where it is: the step in flight finishes (a hold keeps measuring), the next one waits for
    `golive continue`; the step's timeout stops counting. Failures still roll back; `golive abort` still works.
    Exit 2 when the run is unknown, ended, rolling back or already paused."""
    from golive.watch import pause_run

    settings = Settings()
    with _exit_codes():
        code = asyncio.run(pause_run(settings, run_id, reason, settings.nats_user or getpass.getuser(), _printer(False)))
    raise typer.Exit(code)


@app.command("continue")
def continue_(
    run_id: Annotated[str, typer.Argument(help="The paused run", callback=_run_id)],
    reason: Annotated[str, typer.Option(help="Recorded with the request")] = "",
) -> None:
    """Let a paused run go on: the step it held back starts now. Exit 2 when the run is not paused."""
    from golive.watch import continue_run

    settings = Settings()
    with _exit_codes():
        code = asyncio.run(continue_run(settings, run_id, reason, settings.nats_user or getpass.getuser(), _printer(False)))
    raise typer.Exit(code)


@app.command()
def retry(
    run_id: Annotated[str, typer.Argument(help="The run that needs a human", callback=_run_id)],
    reason: Annotated[str, typer.Option(help="What was fixed (recorded in the run's events)")] = "",
) -> None:
    """Once the cause is fixed, run what a needs_human run has left to undo again, from the first not done.
    Follows the run to its new end and exits with its code (1 rolled back, 3 needs a human again); 2 when the
    run is unknown or does not need a human."""
    from golive.watch import retry_run

    settings = Settings()
    with _exit_codes():
        code = asyncio.run(retry_run(settings, run_id, reason, settings.nats_user or getpass.getuser(), _printer(False)))
    raise typer.Exit(code)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to drive from this process", callback=_run_id)],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Exit 2 at once if another coordinator drives it")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as CloudEvents JSON lines")] = False,
) -> None:
    """Drive a run from this process (its coordinator died, or you want it here): replay its events, take its
    lease, carry on, print its events as `golive run` does, exit with the run's code. While another coordinator
    drives it, wait for that one to end or expire (--no-wait: exit 2). Exit 2 for an unknown or ended run."""
    from golive.resume import resume_run

    try:
        with _exit_codes(), watching(out, as_json, _printer(as_json)) as echo:
            code = asyncio.run(resume_run(Settings(), run_id, not no_wait, echo,
                                          lambda text: err.print(text, style="yellow")))
    except KeyboardInterrupt:
        err.print(f"stopped driving run {run_id}; its lease is released for another coordinator")
        raise typer.Exit(130) from None
    raise typer.Exit(code)


@app.command()
def report(
    run_id: Annotated[str | None, typer.Argument(help="The run to report on", callback=_run_id)] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder (default: <artifacts dir>/<run>, or <artifacts dir> with --weekly)")] = None,
    weekly: Annotated[bool, typer.Option("--weekly", help="The weekly performance report of all runs instead")] = False,
    since: Annotated[str | None, typer.Option(help="With --weekly: start (YYYY-MM-DD or ISO time, UTC; default: until - 7 days)")] = None,
    until: Annotated[str | None, typer.Option(help="With --weekly: end, exclusive (default: since + 7 days, else now)")] = None,
) -> None:
    """Rebuild a run's artifacts from the event stream: report.md/html/json, chart.png,
    prod_performance_validation.json, badges. With --weekly: weekly_performance_report_<YYYYWW>.json/.md of
    every run that started in the week (outcomes, durations, rollbacks by cause, p95 trends)."""
    from golive.watch import rebuild_artifacts, weekly_artifacts
    from services.coordinator.artifacts import OutsideArtifacts, run_directory

    settings = Settings()
    if weekly == (run_id is not None):
        err.print("give a run id, or --weekly (not both)", style="red")
        raise typer.Exit(EXIT_INVALID)
    with _exit_codes():
        if weekly:
            start, end = _week_bounds(since, until)
            written = asyncio.run(weekly_artifacts(settings, start, end, out_dir or settings.artifacts_dir))
        else:
            try:
                directory = out_dir or run_directory(settings.artifacts_dir, run_id)
            except OutsideArtifacts as exc:
                err.print(str(exc), style="red")
                raise typer.Exit(EXIT_INVALID) from None
            written = asyncio.run(rebuild_artifacts(settings, run_id, directory))
    for path in written:
        out.print(str(path))


def _week_bounds(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """[since, until) from the options: dates or ISO times, UTC unless they say otherwise; the runbook's
    default is the last 7 days."""
    from datetime import timedelta

    def parse(text: str, option: str) -> datetime:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            err.print(f"{option} {text!r} is not a date (use YYYY-MM-DD or an ISO time)", style="red")
            raise typer.Exit(EXIT_INVALID) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    week = timedelta(days=7)
    end = parse(until, "--until") if until else (parse(since, "--since") + week if since else datetime.now(UTC))
    start = parse(since, "--since") if since else end - week
    if end <= start:
        err.print(f"--until ({end:%Y-%m-%d %H:%M}) is not after --since ({start:%Y-%m-%d %H:%M})", style="red")
        raise typer.Exit(EXIT_INVALID)
    return start, end


@app.command()
def status(run_id: Annotated[str | None, typer.Argument(help="One run (default: all runs)", callback=_run_id)] = None) -> None:
    """Where a run stands (phase, step, outcome and why), or every run with its outcome and duration."""
    from golive.watch import run_statuses

    with _exit_codes():
        runs = asyncio.run(run_statuses(Settings(), run_id))
    if not runs:
        err.print(f"no run {run_id}" if run_id else "no runs yet", style="red" if run_id else None)
        raise typer.Exit(EXIT_INVALID if run_id else 0)
    if run_id:
        state, events = runs[0]
        step = state.steps[state.position].name if state.position >= 0 else "-"
        where = "compensating" if state.compensating and not state.finished else state.outcome or "running"
        out.print(f"run {state.run_id}: plan {state.plan.name}, deployment {state.deploy_id} "
                  f"(previous {state.previous_deploy_id})")
        out.print(f"state: {where}; step {state.position + 1}/{len(state.steps)} {step}")
        from shared.events import TrafficTargetTaken

        # one run per traffic target (services/traffic/target_lock.py): the hold ends with the run, unless it needs a human
        if taken := next((e.data for e in events if isinstance(e.data, TrafficTargetTaken)), None):
            hold = "released" if state.outcome in ("succeeded", "rolled_back") else "held by this run"
            out.print(f"traffic target: {taken.target} ({hold}; canary at {taken.weight}% when the run took it)")
        if state.paused_by and where == "running":
            held_next = state.held_next if state.held_next is not None and state.held_next < len(state.steps) else None
            held = f"; holding before {state.steps[held_next].name}" if held_next is not None else ""
            out.print(f"paused by {state.paused_by}{held}: `golive continue {state.run_id}`", style="bold yellow")
        if state.failure:
            out.print(f"why: {state.failure}", style="red")
        if state.compensations and not state.finished:
            out.print("left to undo: " + ", ".join(c.undoes for c in reversed(state.compensations)))
        from collections import Counter

        from shared.events import WindowJudged

        # the coordinator's own events are its decisions; a window verdict that is not a pass says its numbers
        # against the threshold ("p95 512 ms > 400 ms over 1,204 requests"); passes are only counted
        verdicts = Counter(e.data.verdict for e in events if isinstance(e.data, WindowJudged))
        if verdicts:
            out.print("windows judged: " + ", ".join(f"{verdicts[v]} {v}" for v in ("pass", "fail", "inconclusive")))
        decisions = [e for e in events if e.source == "/golive/coordinator"
                     and not (isinstance(e.data, WindowJudged) and e.data.verdict == "pass")]
        out.print("last decisions:")
        for envelope in decisions[-10:]:
            style, text = describe(envelope)
            out.print(f"  {envelope.time:%H:%M:%S} {text}", style=style or None)
        return
    # one line per run, never wrapped: people grep it and copy run ids out of it
    out.print(f"{'started':<17} {'run':<30} {'plan':<16} {'deployment':<14} {'state':<13} duration / reason", style="bold")
    for state, events in sorted(runs, key=lambda r: r[0].started_at):
        # the last word: `golive retry` ends a needs_human run again (or is still undoing, after its run_finished)
        last = next((e for e in reversed(events) if e.type in (
            "golive.coordinator.run_finished.v1", "golive.coordinator.retry_requested.v1")), None)
        finished = last.data if last is not None and last.type == "golive.coordinator.run_finished.v1" else None
        retrying = last is not None and not finished
        detail = f"{finished.duration_s:.0f}s: {finished.reason}" if finished else (state.failure or "")
        # the list folds only the coordinator's own events: its outcome comes from run_finished
        where = finished.outcome if finished else (
            "compensating" if state.compensating or retrying else "paused" if state.paused_by else "running")
        out.print(f"{state.started_at:%Y-%m-%d %H:%M} {state.run_id:<30} {state.plan.name:<16} {state.deploy_id:<14} "
                  f"{where:<13} {detail}", style=OUTCOME_STYLE.get(where))


@app.command()
def watch(run_id: Annotated[str | None, typer.Argument(help="One run (default: every run with a watch)", callback=_run_id)] = None) -> None:
    """The post-deploy watch (plan `post_deploy`) of a succeeded run: checks done, the last result, the next
    check and the breaches; without RUN, one line per watched run."""
    from golive.watch import watch_states

    with _exit_codes():
        watches = asyncio.run(watch_states(Settings(), run_id))
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
        if not w.ended and w.next_check_at is not None and w.checks_done < w.checks_planned:
            out.print(f"next check: {w.next_check_at:%Y-%m-%d %H:%M:%S}")


@plan_app.command("check")
def plan_check(plan: Annotated[Path, typer.Argument(help="Plan file (YAML)")]) -> None:
    """Validate a plan: every problem with its path, line and reason. Exit 0 valid, 2 invalid."""
    checked = _checked_plan(plan)
    stages = " -> ".join(f"{s.weight}%" for s in checked.canary.stages)
    out.print(f"{plan}: valid plan {checked.name!r}: {len(checked.migrations.statements)} migration(s), "
              f"{len(checked.smoke)} smoke check(s), stages {stages}")


@plan_app.command("schema")
def plan_schema_command(
    out_file: Annotated[Path | None, typer.Option("--out", help="Write it to this file instead of printing it")] = None,
) -> None:
    """Print the plan's JSON Schema (docs/plan.schema.json is this, committed), for editors and CI checks."""
    from services.coordinator.plan import plan_schema

    text = plan_schema()
    if out_file is None:
        print(text, end="")
        return
    out_file.write_text(text)
    err.print(f"wrote {out_file}")


@app.command()
def migrate(
    plan: Annotated[Path, typer.Argument(help="Plan file (YAML)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the lint result and what would run; touch nothing")] = False,
) -> None:
    """The plan's migrations alone, outside a go-live: --dry-run prints the lint and what would run without
    touching anything; without it they run now on the plan's database (same lock, history and repairs as
    the migrator service). Exit 0 done, 1 failed, 2 invalid plan or lint errors."""
    from services.coordinator.plan import PlanError, load_plan
    from services.migrator.dry_run import dry_run as describe_dry_run
    from shared.commands import ApplyMigrations, MigrationStatement

    try:
        loaded = load_plan(plan)
    except PlanError as exc:
        for problem in exc.problems:
            err.print(f"plan error: {redact(problem)}", style="red")
        raise typer.Exit(EXIT_INVALID) from None
    m = loaded.migrations
    cmd = ApplyMigrations(
        database_url_env=loaded.database.url_env, session=m.session, preflight=m.preflight, retry=m.retry,
        statements=[MigrationStatement(name=s.name, sql=s.sql, waive=s.waive, reapply=s.reapply) for s in m.statements],
    )
    lines, ok = describe_dry_run(cmd, dry=dry_run)
    for line in lines:
        out.print(line, style=None if ok or "ERROR" not in line else "red")
    if not ok:
        raise typer.Exit(EXIT_INVALID)
    if dry_run:
        return
    from services.migrator.runner import migrate_now

    raise typer.Exit(asyncio.run(migrate_now(cmd, out.print)))


@app.command()
def serve(
    name: Annotated[str, typer.Argument(help=f"Service: {', '.join(SERVICES)}")],
    metrics_port: Annotated[int, typer.Option(help="Port for Prometheus /metrics (0: any free port)")] = 0,
) -> None:
    """Run one service in this process until SIGINT/SIGTERM (graceful: work in flight finishes or is handed back)."""
    if name not in SERVICES:
        err.print(f"unknown service {name!r}; services: {', '.join(SERVICES)}", style="red")
        raise typer.Exit(EXIT_INVALID)
    from golive.serve import serve as serve_service
    from services.prober.event_loop import new_event_loop

    # the prober's maximum rate is its event loop's cost per request: it runs on uvloop where installed
    with _exit_codes(), asyncio.Runner(loop_factory=new_event_loop if name == "prober" else None) as runner:
        runner.run(serve_service(name, Settings(), metrics_port))


@app.command()
def up(
    state_dir: Annotated[Path | None, typer.Option(help="Where data, logs and the stack file live")] = None,
) -> None:
    """Start the embedded stack: nats-server (JetStream), PostgreSQL, a local Slack webhook receiver and the
    five services, all on loopback. Ctrl-C stops all of it."""
    from golive.stack import run_stack

    settings = Settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_stack(state_dir or settings.state_dir, out.print, stop)
    out.print("stack stopped")


@app.command()
def demo(
    plan: Annotated[Path, typer.Option(help="Plan to run on the embedded stack")] = Path("plans/supabase-golive.yaml"),
    bad_canary: Annotated[str | None, typer.Option(
        "--bad-canary", help="Break the canary app when its stage starts: latency (+600 ms), errors (every second "
                             "answer a 500) or health (/api/health 503); the run rolls back by itself")] = None,
    from_stage: Annotated[int, typer.Option("--from-stage", min=1, help="The stage whose shift breaks the canary")] = 1,
    time_scale: Annotated[float, typer.Option("--time-scale", min=1, help="Divide every duration of the plan by this "
                                              "(default 120: the runbook's 60-minute canary in 30 s)")] = 120.0,
    state_dir: Annotated[Path | None, typer.Option(help="Where the demo's data and logs live (emptied first; "
                                                        "default: <state dir>/demo)")] = None,
) -> None:
    """The runbook on this machine: the embedded stack (seeded database, a streaming replica, the demo app's
    stable and canary deployments behind Envoy, a local Slack receiver), the plan with time compressed, every
    event and Slack message as it happens, then the artifacts folder. Exits with the run's code."""
    from golive.demo import BAD_CANARY, DemoOptions, quiet_lines, run_demo

    if bad_canary is not None and bad_canary not in BAD_CANARY:
        err.print(f"--bad-canary {bad_canary!r}: use one of {', '.join(BAD_CANARY)}", style="red")
        raise typer.Exit(EXIT_INVALID)
    checked = _checked_plan(plan)
    if from_stage > len(checked.canary.stages):
        err.print(f"--from-stage {from_stage}: the plan has {len(checked.canary.stages)} stages", style="red")
        raise typer.Exit(EXIT_INVALID)
    settings = Settings()
    options = DemoOptions(plan=checked, state_dir=(state_dir or settings.state_dir / "demo").resolve(),
                          bad_canary=bad_canary, from_stage=from_stage, time_scale=time_scale)
    try:
        with watching(out, False, quiet_lines(_printer(False))) as echo:
            code, run_id = run_demo(options, settings, lambda line: out.print(line, style="dim"), echo)
    except RuntimeError as exc:
        err.print(str(exc), style="red")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    out.print(f"artifacts: {(settings.artifacts_dir / run_id).resolve()}; logs: {options.state_dir / 'logs'}")
    raise typer.Exit(code)


@docs_app.command("asyncapi")
def docs_asyncapi(out_path: Annotated[Path, typer.Option("--out", help="Where to write it")] = Path("docs/asyncapi.yaml")) -> None:
    """Write the AsyncAPI 3.0 document of the bus (every command, event and subject) from the code."""
    from golive.asyncapi import write

    out.print(str(write(out_path)))


@docs_app.command("envoy")
def docs_envoy(out_path: Annotated[Path, typer.Option("--out", help="Where to write it")] = Path("deploy/envoy.yaml")) -> None:
    """Write the Envoy configuration docker-compose.yml mounts, from services/traffic/envoy_config.py."""
    from golive.compose import write_envoy

    out.print(str(write_envoy(out_path)))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
