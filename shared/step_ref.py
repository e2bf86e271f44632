"""Which step an event is about, as fields: its phase, its canary stage, its kind and the probe it runs.

A step's name (``stage2:shift:50``) is its identity in command ids and compensations, and events keep carrying it;
what a reader needs to know about the step is in a StepRef beside it, built by the coordinator with the step
(services/coordinator/steps.py). Events written before steps were typed carry only the name: ``ref_of_name``
reads those, and is the one place a step name is ever taken apart.
"""

from __future__ import annotations

import re
from typing import Literal

from golive.shared.plan.base import Strict

Phase = Literal[
    "preflight", "migrate", "smoke", "canary", "final_validation", "lock_in", "done", "compensating",
]
# gate: waits for `golive approve`; check: a preflight probe; migrate: the migrations; smoke: a smoke check;
# shift: a canary weight set; hold: a stage's checks and guard on one clock; validate: the final validation;
# promote: lock-in; take: holding the traffic target before the first step; other: a name this code does not know
StepKind = Literal["gate", "check", "migrate", "smoke", "shift", "hold", "validate", "promote", "take", "other"]


class StepRef(Strict):
    """One step of a run as fields. ``stage``: its canary stage (1-based), None outside the canary; ``probe``: the
    probe a preflight or smoke check runs; ``undoing``: the event is about the compensation of this step. ``phase``
    is None only for a stored name this code does not know (kind ``other``)."""

    phase: Phase | None
    kind: StepKind
    stage: int | None = None
    probe: str | None = None
    undoing: bool = False

    def undone(self) -> StepRef:
        """The same step, as its compensation."""
        return self.model_copy(update={"undoing": True})


_STAGE_STEP = re.compile(r"^stage(\d+):(gate|shift|hold|check)(?::(.*))?$")
_STAGE_KINDS: dict[str, StepKind] = {"gate": "gate", "shift": "shift", "hold": "hold", "check": "hold"}
_FIXED: dict[str, StepRef] = {
    "migrate": StepRef(phase="migrate", kind="migrate"),
    "final_validation": StepRef(phase="final_validation", kind="validate"),
    "lock_in:promote": StepRef(phase="lock_in", kind="promote"),
    "traffic:take": StepRef(phase="preflight", kind="take"),
}


def ref_of_name(name: str) -> StepRef:
    """The fields of a step known only by its name, as events written before steps were typed carry it. Only for
    those: every step built today carries its StepRef. Runs of old saw ``stage<N>:check:<probe>`` (one step per
    stage check, before a stage's checks were held on one clock): read as that stage's hold."""
    undoing = name.startswith("undo:")
    name = name.removeprefix("undo:")
    ref = _FIXED.get(name)
    if ref is None:
        head, _, rest = name.partition(":")
        if match := _STAGE_STEP.match(name):
            number, word, probe = match.groups()
            ref = StepRef(phase="canary", kind=_STAGE_KINDS[word], stage=int(number),
                          probe=probe if word == "check" else None)
        elif head == "preflight" and rest.startswith("gate:"):
            ref = StepRef(phase="preflight", kind="gate")
        elif head == "preflight" and rest.startswith("check:"):
            ref = StepRef(phase="preflight", kind="check", probe=rest.removeprefix("check:"))
        elif head == "smoke":
            ref = StepRef(phase="smoke", kind="smoke", probe=rest)
        else:
            ref = StepRef(phase=None, kind="other")
    return ref.undone() if undoing else ref


GATE_NAME_WORDS = 40  # characters of the prompt a preflight gate's name keeps


def preflight_gate_name(prompt: str, taken: set[str]) -> str:
    """``preflight:gate:confirm-backup-completion``: a preflight gate named for what it confirms, never by a number
    (``preflight:gate:2`` read as canary stage 2 next to `golive approve --stage 2`). A second gate with the same
    words gets ``-again``, then ``-again-again``."""
    words = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:GATE_NAME_WORDS].rstrip("-") or "confirm"
    name = f"preflight:gate:{words}"
    while name in taken:
        name += "-again"
    return name
