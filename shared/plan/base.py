"""What every part of the plan (and every part of a message) is built on: strict, frozen models whose errors
never quote their input, and a problem that knows where below its model it was found."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# A plan's lists and maps are bounded so that a checked plan is also small to hold, send and run (the runbook's
# plan has a handful of each; a generated 50 MB plan once asked for 397 index builds)
MAX_ITEMS = 100
MAX_STAGES = 20


class Strict(BaseModel):
    """A plan section or a message part: unknown keys refused, frozen once validated."""

    # errors never quote the input back: a value in the wrong field may be a secret
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Problem(ValueError):
    """A problem a validator found below the model it validates; ``where`` locates it in that model, so a plan
    error points at the value (``canary.stages[2].weight``), not at the model that noticed."""

    def __init__(self, where: tuple[str | int, ...], reason: str) -> None:
        super().__init__(f"{path_text(list(where))}: {reason}")
        self.where = where
        self.reason = reason


def path_text(loc: list[str | int]) -> str:
    """``["canary", "stages", 2, "weight"]`` -> ``canary.stages[2].weight``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(plan)"
