"""A run's story: one model of what happened in a run, folded from its events, that every output renders (the
lock-in artifacts, the live panel, `golive status` and `watch`, the chart, Slack), so they all say the same thing.

- model.py: RunStory and its parts (stages with their windows and checks, operator actions, what was undone), frozen;
  what is derived from them (health word, step x of N, breach to rollback, what was kept) is a property
- fold.py: ``fold(story, envelope)`` (one event at a time: live views) and ``story_of(events)`` (a run read whole)
- reason.py: why the run stands where it does, with the deciding numbers
- outline.py: the plan's steps as the story counts them
"""

from __future__ import annotations

from golive.shared.story.fold import fold, story_of
from golive.shared.story.model import (
    ActionKind,
    AnalysisLimits,
    CheckStory,
    Failure,
    Health,
    Moment,
    OperatorAction,
    Outcome,
    PhaseSpan,
    PlannedStep,
    RunStory,
    StageState,
    StageStory,
    Traffic,
    Undone,
    WindowStory,
    stage_label,
)
from golive.shared.story.outline import outline
from golive.shared.story.reason import step_words

__all__ = ["ActionKind", "AnalysisLimits", "CheckStory", "Failure", "Health", "Moment", "OperatorAction", "Outcome", "PhaseSpan",
           "PlannedStep", "RunStory", "StageState", "StageStory", "Traffic", "Undone", "WindowStory", "fold", "outline",
           "stage_label", "step_words", "story_of"]
