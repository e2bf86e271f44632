"""Where a run stands, as the live panel (golive/views/live.py) and `golive status RUN` both say it, read off the run's
story (shared/story/): one health word, step x of N and what that step does, the weight set and read back with the
stable and canary deployments, the stage's windows against the plan's limits, the guard values, and once the run
ended, its end (why, what was undone and kept, how long) instead of the step it was in.

Pure: a story (and the clock, for the time left in a hold) in, rich ``Text`` out. Every piece of the run's own text
(plan, step and probe names, reasons, who and why) goes in as plain text, never as markup.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from golive.shared.judge import GAUGES, reading_words
from golive.shared.story import Health, RunStory, StageStory, WindowStory, step_words

HEALTH_STYLE: dict[Health, str] = {
    "Progressing": "bold cyan", "Paused": "bold yellow", "Degraded": "bold red", "Healthy": "bold green",
    "RolledBack": "bold yellow", "NeedsHuman": "bold red",
}
_ENDED = {"succeeded": "succeeded", "rolled_back": "rolled back", "failed": "failed", "needs_human": "needs a human"}
_KIND = {"shift": "shift", "hold": "hold", "gate": "gate"}  # a stage's step, after its label: "stage 2 (50%) hold"


def health_line(story: RunStory, now: datetime) -> Text:
    """``Progressing · step 7 of 12 · stage 1 (10%) hold · 40s left of 60s``; once ended ``RolledBack · step 8
    of 12 · rolled back after 42.0s``: the word first, as `kubectl argo rollouts get rollout` puts it."""
    line = Text(story.health, style=HEALTH_STYLE[story.health])
    if story.steps and story.step_number:
        line.append(f" · {story.step_of}")
    line.append(" · ")
    line.append(_where(story))
    if (left := hold_left(story, now)) is not None and story.stage is not None:
        line.append(f" · {left:.0f}s left of {story.stage.hold_s:g}s", style="cyan")
    return line


def _where(story: RunStory) -> str:
    if story.finished:
        after = f" after {story.duration_s:.1f}s" if story.duration_s is not None else ""
        return _ENDED[story.outcome] + after + (": nothing to undo" if story.outcome == "failed" else "")
    if story.undoing is not None:
        return f"rolling back: undoing {story.undoing}"
    if story.failure is not None:
        return "rolling back"
    if story.step_ref is None:
        return "starting"
    where = step_words(story, story.step_ref, story.step)
    if story.step_ref.stage is not None:
        return f"{where} {_KIND.get(story.step_ref.kind, story.step_ref.kind)}"
    return where


def hold_left(story: RunStory, now: datetime) -> float | None:
    """Seconds left in the stage hold in flight, None when no hold runs."""
    ref, stage = story.step_ref, story.stage
    if (story.finished or story.failure is not None or ref is None or ref.kind != "hold" or stage is None
            or story.step_started_at is None):
        return None
    return max(0.0, stage.hold_s - (now - story.step_started_at).total_seconds())


def waiting_line(story: RunStory) -> Text | None:
    """What the run waits for from a person: a pause to continue, a gate to approve; None when it waits for nobody."""
    if story.finished or story.failure is not None:
        return None
    if story.paused is not None:
        why = f": {story.paused.why}" if story.paused.why else ""
        return Text(f"PAUSED by {story.paused.by}{why}: `golive continue {story.run_id}`", style="bold yellow")
    if story.waiting_at_gate and story.step_ref is not None:
        prompt = next((s.prompt for s in story.steps if s.name == story.step), "")
        gate = f'"{prompt}"' if prompt else step_words(story, story.step_ref, story.step)
        stage = f" --stage {story.step_ref.stage}" if story.step_ref.stage is not None else ""
        return Text(f"WAITING at {gate}: `golive approve {story.run_id}{stage} --comment ...`", style="bold yellow")
    return None


def traffic_line(story: RunStory) -> Text:
    """``canary dpl_new · stable dpl_old · weight set 50%, read back 50% (envoy)``; a read-back that differs from
    what golive set is red."""
    traffic = story.traffic
    line = Text(f"canary {traffic.canary or story.deploy_id or '-'} · stable {story.previous_deploy_id or '-'} · ")
    if traffic.rolled_back_to is not None:
        line.append(f"traffic back on {traffic.rolled_back_to}, canary read back {traffic.weight_read_back}%")
    elif traffic.weight_set is None:
        read = f", canary read back {traffic.weight_read_back}%" if traffic.weight_read_back is not None else ""
        line.append(f"weight not set yet{read}")
    else:
        line.append(f"weight set {traffic.weight_set}%, ")
        differs = traffic.weight_read_back != traffic.weight_set
        line.append(f"read back {_percent(traffic.weight_read_back)}", style="bold red" if differs else "green")
    if traffic.provider:
        line.append(f" ({traffic.provider})")
    return line


def _percent(value: int | None) -> str:
    return "-" if value is None else f"{value}%"


def stage_in_focus(story: RunStory) -> StageStory | None:
    """The stage whose windows matter now: the one that decided a failed run, else the stage of the step in flight
    (None outside the canary: the final validation shows its own windows, not the last stage's)."""
    if story.failure is not None:
        return story.deciding_stage
    ref = story.step_ref
    if story.finished or ref is None or ref.stage is None or not 0 < ref.stage <= len(story.stages):
        return None
    return story.stages[ref.stage - 1]


def windows_line(story: RunStory) -> Text | None:
    """``stage 2 (50%) windows: 3 judged · failed 1/3 · in a row 1/2 · inconclusive 0 (too many pause the run)``: the stage's
    failed windows against the plan's failure_limit, its longest run of a check against the consecutive limit."""
    stage = stage_in_focus(story)
    if stage is None:
        return None
    judged = [w for w in stage.windows if w.verdict is not None]
    line = Text(f"{stage.label} windows: {len(judged)} judged · ")
    limits = story.analysis
    failed, in_a_row = stage.failed_windows, _in_a_row(judged)
    if limits is None:
        line.append(f"failed {failed}", style="red" if failed else "")
        line.append(f" · inconclusive {stage.inconclusive_windows}")
        return line
    line.append(f"failed {failed}/{limits.failure_limit}", style="bold red" if failed >= limits.failure_limit
                else "red" if failed else "green")
    line.append(" · ")
    line.append(f"in a row {in_a_row}/{limits.consecutive_failure_limit}",
                style="bold red" if in_a_row >= limits.consecutive_failure_limit else "red" if in_a_row else "green")
    policy = {"fail": "counted as failed", "extend": "too many extend the hold",
              "pause": "too many pause the run"}.get(limits.inconclusive, limits.inconclusive)
    inconclusive = stage.inconclusive_windows
    line.append(f" · inconclusive {inconclusive} ({policy})", style="yellow" if inconclusive else "")
    return line


def _in_a_row(judged: list[WindowStory]) -> int:
    """The longest current streak of failed windows of one check (what consecutive_failure_limit counts)."""
    last: dict[str, WindowStory] = {}
    for window in judged:
        if not window.guard:
            last[window.probe] = window
    return max((w.consecutive for w in last.values() if w.verdict == "fail"), default=0)


def guards_line(story: RunStory) -> Text | None:
    """``guards (db): replica lag 1.5 s <= 8 s · WAL lag 0 bytes · connection use 40% <= 80%``: the last value read
    of each gauge, against its limit when the plan sets one; over it in red. Shown while a stage is in focus."""
    if story.guard_probe is None or story.finished or stage_in_focus(story) is None:
        return None  # the guards are read through the canary stages' holds only
    line = Text(f"guards ({story.guard_probe}): ")
    if not story.guard_values:
        line.append("not read yet", style="dim")
        return line
    shown = [m for m in GAUGES if m in story.guard_limits or m in story.guard_values]
    for i, metric in enumerate(shown):
        if i:
            line.append(" · ")
        value, limit = story.guard_values.get(metric), story.guard_limits.get(metric)
        if limit is None:
            label, unit = GAUGES[metric]
            line.append(f"{label} {value:g}{unit}")
            continue
        over = value is not None and value > limit
        line.append(reading_words(metric, value, limit), style="bold red" if over else "green" if value is not None
                    else "dim")
    return line


def end_lines(story: RunStory) -> list[Text]:
    """Why a failed run stands where it does and what its rollback did; a run that ended: its end (stages, what was
    undone and kept, the timings). Nothing for a run going on without a failure."""
    lines: list[Text] = []
    if story.failure is not None or (story.finished and story.outcome != "succeeded"):
        lines.append(Text(f"why: {story.reason}", style="red"))
    elif story.finished:
        lines.append(Text(story.reason, style="green"))
    if not story.finished and story.failure is None:
        return lines
    if story.finished and any(stage.state != "pending" for stage in story.stages):
        lines.append(_stage_strip(story))
    # an undo not done once the run ended is what is left to undo, said below
    lines += [Text(f"undone: {u.what}" if u.done_at else f"undoing: {u.undoes}", style="yellow")
              for u in story.undone if u.done_at or not story.finished]
    if story.kept and not story.drop_indexes:
        lines.append(Text(f"kept: {', '.join(story.kept)} (rollback.drop_indexes: false)", style="yellow"))
    if story.left_to_undo and story.outcome == "needs_human":
        lines.append(Text(f"left to undo: {', '.join(story.left_to_undo)}: `golive retry {story.run_id}` once the "
                          "cause is fixed", style="bold red"))
    timings = [f"breach to rollback {s:.1f}s" for s in (story.breach_to_rollback_s,) if s is not None]
    timings += [f"rollback {s:.1f}s" for s in (story.rollback_s,) if s is not None and story.undone]
    if timings:
        lines.append(Text(" · ".join(timings)))
    return lines


def _stage_strip(story: RunStory) -> Text:
    """``stages: 10% ✓ → 50% ✗ → 100% -``: each stage's verdict, not reached as -."""
    strip = Text("stages: ")
    for i, stage in enumerate(story.stages):
        if i:
            strip.append(" → ")
        mark, style = {"passed": ("✓", "green"), "failed": ("✗", "bold red")}.get(stage.state, ("-", "dim"))
        strip.append(f"{stage.weight}% {mark}", style=style)
    return strip


def status_lines(story: RunStory, now: datetime) -> list[Text]:
    """`golive status RUN`'s account of where the run stands: ``state:`` and the health line, what it waits for
    from a person (a gate; a pause is said with what it holds back, from the coordinator's state), the traffic, the
    stage's windows against the limits, the guards, and why / what was undone once it failed or ended."""
    state = Text("state: ")
    state.append_text(health_line(story, now))
    gate = waiting_line(story) if story.paused is None else None
    return [state, *(line for line in (gate, traffic_line(story), windows_line(story), guards_line(story))
                     if line is not None), *end_lines(story)]
