"""`golive demo`: the runbook on the embedded stack with time compressed (golive/demo/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from golive.cli.arguments import checked_plan
from golive.cli.console import err, event_printer, exit_codes, out
from golive.exit_codes import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_UNREACHABLE
from golive.plans import RUNBOOK
from golive.shared.extras import require_extra
from golive.shared.settings import Settings
from golive.views.live import watching


def demo(
    plan: Annotated[Path | None, typer.Option(help="Plan to run on the embedded stack (default: the runbook, "
                                                   "golive/plans/supabase-golive.yaml, installed with golive)",
                                              show_default=False)] = None,
    bad_canary: Annotated[str | None, typer.Option(
        "--bad-canary", help="Break the canary app when its stage starts: latency (+600 ms), errors (every second "
                             "answer a 500) or health (/api/health 503); the run rolls back by itself")] = None,
    from_stage: Annotated[int | None, typer.Option(
        "--from-stage", min=1, help="With --bad-canary: the stage whose shift breaks the canary (default 1)",
        show_default=False)] = None,
    time_scale: Annotated[float, typer.Option("--time-scale", min=1, help="Divide every duration of the plan by this "
                                              "(default 120: the runbook's 60-minute canary in 30 s)")] = 120.0,
    state_dir: Annotated[Path | None, typer.Option(help="Where the demo's data and logs live (emptied first; "
                                                        "default: <state dir>/demo)")] = None,
) -> None:
    """The runbook on this machine: the embedded stack (seeded database, a streaming replica, the demo app's
    stable and canary deployments behind Envoy, a local Slack receiver), the plan with time compressed, every
    event and Slack message as it happens, then the artifacts folder. Exits with the run's code."""
    from golive.demo.run import BAD_CANARY, DemoOptions, quiet_lines, run_demo

    if bad_canary is not None and bad_canary not in BAD_CANARY:
        err.print(f"--bad-canary {bad_canary!r}: use one of {', '.join(BAD_CANARY)}", style="red")
        raise typer.Exit(EXIT_INVALID)
    if from_stage is not None and bad_canary is None:  # it would change nothing: say so rather than run a healthy demo
        err.print(f"--from-stage {from_stage} says which stage breaks the canary; it needs --bad-canary "
                  f"({'|'.join(BAD_CANARY)}), e.g. `golive demo --bad-canary errors --from-stage {from_stage}`", style="red")
        raise typer.Exit(EXIT_INVALID)
    from_stage = from_stage or 1
    checked = checked_plan(plan or RUNBOOK)
    if from_stage > len(checked.canary.stages):
        err.print(f"--from-stage {from_stage}: the plan has {len(checked.canary.stages)} stages", style="red")
        raise typer.Exit(EXIT_INVALID)
    with exit_codes():
        require_extra("stack", "`golive demo` (the embedded nats-server, PostgreSQL and Envoy)")
    settings = Settings()
    options = DemoOptions(plan=checked, state_dir=(state_dir or settings.state_dir / "demo").resolve(),
                          bad_canary=bad_canary, from_stage=from_stage, time_scale=time_scale)
    try:
        with watching(out, False, quiet_lines(event_printer(False))) as echo:
            code, run_id = run_demo(options, settings, lambda line: out.print(line, style="dim"), echo)
    except RuntimeError as exc:
        err.print(str(exc), style="red")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except KeyboardInterrupt:  # run_demo stopped the stack it started on the way out
        err.print(f"demo stopped on Ctrl-C: the stack it started is stopped; data and logs in {options.state_dir}")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    out.print(f"artifacts: {(settings.artifacts_dir / run_id).resolve()}; logs: {options.state_dir / 'logs'}")
    raise typer.Exit(code)
