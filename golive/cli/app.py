"""The `golive` command (the console script and `python -m golive`): every command, in the order `--help` lists
them, registered from the module of its group."""

from __future__ import annotations

import typer

from golive.cli import demo, docs, operate, plan, report, run, stack, status

app = typer.Typer(help="golive: production go-lives that roll back by themselves.", no_args_is_help=True,
                  add_completion=False, rich_markup_mode=None)

# a run: start and follow it, operate it, see where it stands; a plan's migrations alone
app.command()(run.run)
app.command()(run.events)
app.command()(operate.abort)
app.command()(operate.approve)
app.command()(operate.pause)
app.command("continue")(operate.continue_)
app.command()(operate.retry)
app.command()(operate.resume)
app.command()(report.report)
app.command()(status.status)
app.command()(status.watch)
app.command()(plan.migrate)
# the processes: one service, the embedded stack, the demo on it
app.command()(stack.serve)
app.command()(stack.up)
app.command()(demo.demo)

plan_app = typer.Typer(help="Work with plan files.", no_args_is_help=True)
plan_app.command("check")(plan.check)
plan_app.command("schema")(plan.schema)
app.add_typer(plan_app, name="plan")

docs_app = typer.Typer(help="Regenerate the documents generated from the code.", no_args_is_help=True)
docs_app.command("asyncapi")(docs.asyncapi)
docs_app.command("envoy")(docs.envoy)
docs_app.command("dashboard")(docs.dashboard)
app.add_typer(docs_app, name="docs")


def main() -> None:
    """The console script `golive`."""
    app()


if __name__ == "__main__":
    main()
