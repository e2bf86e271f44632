"""The `golive` command: run, watch and operate go-lives; run the services and the embedded stack."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
import getpass
from datetime import UTC, datetime
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from golive.render import OUTCOME_STYLE, describe
from services.coordinator.window import describe_window, window_containing
from golive.watch import EXIT_INVALID, EXIT_UNREACHABLE, BusUnreachable, new_run_id, show_events, start_and_watch
from shared.envelope import Envelope
from shared.settings import Settings
from shared.subjects import SERVICES

app = typer.Typer(help="golive: production go-lives that roll back by themselves.", no_args_is_help=True,
                  add_completion=False, rich_markup_mode=None)
plan_app = typer.Typer(help="Work with plan files.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _printer(as_json: bool):
    def echo(envelope: Envelope) -> None:
        if as_json:
            print(envelope.to_json().decode(), flush=True)
            return
        style, text = describe(envelope)
        out.print(f"{envelope.time:%H:%M:%S} {escape(text)}", style=style or None)

    return echo


@contextmanager
def _exit_codes():
    """What a command that talks to the bus can meet, as its exit code with the reason on stderr."""
    from golive.watch import RunNotControllable

    try:
        yield
    except RunNotControllable as exc:
        err.print(str(exc), style="red")
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
            err.print(f"plan error: {escape(problem)}", style="red")
        raise typer.Exit(EXIT_INVALID) from None


@app.command()
def run(
    plan: Annotated[Path, typer.Argument(help="Plan file (YAML)")],
    deploy_id: Annotated[str, typer.Option(help="The new deployment to roll out")] = "canary",
    previous_deploy_id: Annotated[str | None, typer.Option(help="The deployment to roll back to")] = "stable",
    run_id: Annotated[str | None, typer.Option(help="Run id (default: generated)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as CloudEvents JSON lines")] = False,
    force_window: Annotated[bool, typer.Option("--force-window", help="Start outside the plan's maintenance window")] = False,
) -> None:
    """Start a go-live and watch it. Exit 0 succeeded, 1 rolled back, 2 invalid input, 3 needs a human,
    4 bus unreachable. Ctrl-C stops watching; the run goes on (watch it again with `golive events --follow`)."""
    checked = _checked_plan(plan)
    window = checked.window.maintenance
    if window and not force_window and not window_containing(datetime.now(UTC), window.days, window.start, window.end, window.timezone):
        err.print(f"outside the maintenance window ({describe_window(window.days, window.start, window.end, window.timezone)}): "
                  "nothing started; use --force-window to start anyway", style="red")
        raise typer.Exit(EXIT_INVALID)
    run_id = run_id or new_run_id()
    err.print(f"run {run_id}: {checked.name}, deployment {deploy_id} (previous {previous_deploy_id})", style="bold")
    try:
        with _exit_codes():
            code = asyncio.run(start_and_watch(Settings(), checked, deploy_id, previous_deploy_id, run_id,
                                               _printer(as_json), force_window=force_window))
    except KeyboardInterrupt:
        err.print(f"stopped watching; run {run_id} goes on: `golive events --run {run_id} --follow`")
        raise typer.Exit(130) from None
    raise typer.Exit(code)


@app.command()
def events(
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run's events")] = None,
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
    run_id: Annotated[str, typer.Argument(help="The run to abort")],
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
    run_id: Annotated[str, typer.Argument(help="The run waiting at a gate")],
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
def report(
    run_id: Annotated[str, typer.Argument(help="The run to report on")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder (default: <artifacts dir>/<run>)")] = None,
) -> None:
    """Rebuild a run's artifacts from the event stream: report.md/json, prod_performance_validation.json, badges."""
    from golive.watch import rebuild_artifacts

    settings = Settings()
    with _exit_codes():
        written = asyncio.run(rebuild_artifacts(settings, run_id, out_dir or settings.artifacts_dir / run_id))
    for path in written:
        out.print(str(path))


@app.command()
def status(run_id: Annotated[str | None, typer.Argument(help="One run (default: all runs)")] = None) -> None:
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
        if state.failure:
            out.print(f"why: {escape(state.failure)}", style="red")
        if state.compensations and not state.finished:
            out.print("left to undo: " + ", ".join(c.undoes for c in reversed(state.compensations)))
        out.print("last decisions:")
        for envelope in [e for e in events if e.source == "/golive/coordinator"][-6:]:
            style, text = describe(envelope)
            out.print(f"  {envelope.time:%H:%M:%S} {escape(text)}", style=style or None)
        return
    # one line per run, never wrapped: people grep it and copy run ids out of it
    out.print(f"{'started':<17} {'run':<30} {'plan':<16} {'deployment':<14} {'state':<13} duration / reason", style="bold")
    for state, events in sorted(runs, key=lambda r: r[0].started_at):
        finished = next((e.data for e in events if e.type == "golive.coordinator.run_finished.v1"), None)
        detail = f"{finished.duration_s:.0f}s: {finished.reason}" if finished else (state.failure or "")
        # the list folds only the coordinator's own events: its outcome comes from run_finished
        where = finished.outcome if finished else ("compensating" if state.compensating else "running")
        out.print(f"{state.started_at:%Y-%m-%d %H:%M} {state.run_id:<30} {state.plan.name:<16} {state.deploy_id:<14} "
                  f"{where:<13} {escape(detail)}", style=OUTCOME_STYLE.get(where))


@plan_app.command("check")
def plan_check(plan: Annotated[Path, typer.Argument(help="Plan file (YAML)")]) -> None:
    """Validate a plan: every problem with its path, line and reason. Exit 0 valid, 2 invalid."""
    checked = _checked_plan(plan)
    stages = " -> ".join(f"{s.weight}%" for s in checked.canary.stages)
    out.print(f"{plan}: valid plan {checked.name!r}: {len(checked.migrations.statements)} migration(s), "
              f"{len(checked.smoke)} smoke check(s), stages {stages}")


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
            err.print(f"plan error: {escape(problem)}", style="red")
        raise typer.Exit(EXIT_INVALID) from None
    m = loaded.migrations
    cmd = ApplyMigrations(
        database_url_env=loaded.database.url_env, session=m.session, preflight=m.preflight, retry=m.retry,
        statements=[MigrationStatement(name=s.name, sql=s.sql, waive=s.waive, reapply=s.reapply) for s in m.statements],
    )
    lines, ok = describe_dry_run(cmd)
    for line in lines:
        out.print(escape(line), style=None if ok or "ERROR" not in line else "red")
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

    asyncio.run(serve_service(name, Settings(), metrics_port))


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
    run_stack(state_dir or settings.state_dir, lambda line: out.print(escape(line)), stop)
    out.print("stack stopped")


@app.command()
def demo(
    plan: Annotated[Path, typer.Option(help="Plan to run on the embedded stack")] = Path("plans/skeleton.yaml"),
    state_dir: Annotated[Path | None, typer.Option(help="Where data, logs and the stack file live")] = None,
) -> None:
    """Start the embedded stack, run a plan on it while you watch, stop the stack. Exits with the run's code."""
    from golive.stack import run_stack

    checked = _checked_plan(plan)
    settings = Settings()
    state_dir = (state_dir or settings.state_dir).resolve()
    stop, ready = threading.Event(), threading.Event()
    stack: dict = {}

    def on_ready(info: dict) -> None:
        stack.update(info)
        ready.set()

    failure: list[BaseException] = []

    def serve_stack() -> None:
        try:
            run_stack(state_dir, lambda line: out.print(escape(line), style="dim"), stop, on_ready=on_ready)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=serve_stack, name="stack")
    thread.start()
    code = EXIT_UNREACHABLE
    try:
        ready.wait()
        if failure:
            err.print(f"the stack did not start: {failure[0]}", style="red")
        else:
            run_id = new_run_id()
            err.print(f"run {run_id}: {checked.name} on the embedded stack", style="bold")
            run_settings = settings.model_copy(update={"nats_url": stack["nats_url"], "state_dir": state_dir})
            code = asyncio.run(start_and_watch(run_settings, checked, "canary", "stable", run_id, _printer(False)))
            out.print(f"artifacts: {(settings.artifacts_dir / run_id).resolve()}; logs: {state_dir / 'logs'}; "
                      f"`golive events --run {run_id}` replays the run while a stack runs")
    except KeyboardInterrupt:
        code = 130
    finally:
        stop.set()
        thread.join()
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
