"""Rehearsal: the same plan on a compressed clock (`golive run --time-scale N`, `golive demo`).

``compress(plan, factor)`` divides every duration the runbook sets (holds, check durations, windows, the
analysis interval, the rollback window, the post-deploy period) by ``factor``, so the
runbook's 60-minute canary runs in 30 s at factor 120 with every phase, gate, threshold and message as
written. What is not the runbook's clock keeps its value or a floor:

- ``timeouts.step`` is slack for the services' own latency, which a rehearsal does not shorten: at least 30 s;
  ``timeouts.approval`` at least 60 s (a person still has to type `golive approve`).
- ``retries`` (transient failures of a dependency) and a probe's ``long_transaction`` (a property of the
  database) keep their values.
- A window, a check's duration and a hold are at least 2 s, so each still holds enough requests to judge; a hold
  is never shorter than one window.
- Thresholds (p95, error rate, replica lag seconds, ...) are never scaled: they are what is being judged.
"""

from __future__ import annotations

from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator

from golive.shared.plan import Plan
from golive.shared.plan.durations import parse_duration

DEMO_TIME_SCALE = 120  # the runbook's 60-minute canary in 30 s; the whole demo well under 3 minutes
MIN_WINDOW_S = 2.0
MIN_STEP_TIMEOUT_S = 30.0
MIN_APPROVAL_TIMEOUT_S = 60.0
# field paths (dot-joined model field names, list indexes and dict keys left out) that keep their value
_UNSCALED = ("retries.", "probes.long_transaction")
_FLOORS = {"timeouts.step": MIN_STEP_TIMEOUT_S, "timeouts.approval": MIN_APPROVAL_TIMEOUT_S,
           "guards.sample_every": 0.1}  # gauges 10 times a second at most
_WINDOW_FIELDS = {"window", "duration", "hold"}  # at least MIN_WINDOW_S each


def compress(plan: Plan, factor: float, min_window_s: float = MIN_WINDOW_S) -> Plan:
    """The plan with the runbook's durations divided by ``factor`` (>= 1; 1 returns the plan unchanged).
    ``min_window_s``: the floor of windows, check durations and holds (tests with many runs go lower).

    The result is validated again as a plan, so a compressed plan is as valid as the original."""
    if factor < 1:
        raise ValueError(f"time scale {factor:g} is below 1: a rehearsal compresses time, it never stretches it")
    if factor == 1:
        return plan
    # what the plan file set, plus every duration (a default one too): the model fills in the rest again
    data = plan.model_dump(mode="json", by_alias=True, exclude_unset=True)
    for keys, name, seconds in _durations(plan, ()):
        target = data
        for key in keys[:-1]:
            target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
        dotted = ".".join(k for k in keys if isinstance(k, str) and not isinstance(k, _DictKey))
        target[keys[-1]] = _scale_one(dotted, name, seconds, factor, min_window_s)
    return Plan.model_validate(_stretch_holds_to_windows(data))


def _durations(model: BaseModel, keys: tuple) -> list[tuple[tuple, str, float]]:
    """(path in the dumped plan, field name, seconds) of every Duration field set in ``model`` and below."""
    found = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = info.alias or name
        if _is_duration(info.annotation, info.metadata) and isinstance(value, int | float) and not isinstance(value, bool):
            found.append(((*keys, key), name, float(value)))
        else:
            found += _durations_in(value, (*keys, key))
    return found


def _durations_in(value: Any, keys: tuple) -> list[tuple[tuple, str, float]]:
    if isinstance(value, BaseModel):
        return _durations(value, keys)
    if isinstance(value, list):
        return [d for i, v in enumerate(value) for d in _durations_in(v, (*keys, i))]
    if isinstance(value, dict):
        return [d for k, v in value.items() for d in _durations_in(v, (*keys, _DictKey(k)))]
    return []


class _DictKey(str):
    """A key of a user-named mapping (a probe's name): not part of a field path."""


def _scale_one(where: str, name: str, seconds: float, factor: float, min_window_s: float) -> float:
    if any(where.startswith(prefix) for prefix in _UNSCALED) or where.endswith("long_transaction"):
        return seconds
    scaled = seconds / factor
    if where == "analysis.interval" or name in _WINDOW_FIELDS:
        scaled = max(scaled, min_window_s)
    elif where in _FLOORS:
        scaled = max(scaled, _FLOORS[where])
    if where.startswith("timeouts."):
        scaled = min(seconds, scaled)  # a floor never makes a timeout longer than the plan's own
    return max(round(scaled, 3), 0.001)  # a duration of 0 means something else (or is refused)


def _stretch_holds_to_windows(data: dict[str, Any]) -> dict[str, Any]:
    """A hold shorter than its windows would judge nothing: make it at least one window long."""
    interval = (data.get("analysis") or {}).get("interval") or 0.0
    for stage in (data.get("canary") or {}).get("stages", []):
        windows = [c.get("window") or interval for c in stage.get("checks", [])] + [interval]
        stage["hold"] = max(stage["hold"], *windows)
    return data


def _is_duration(annotation: Any, metadata: list | None = None) -> bool:
    """Whether a field holds a plan Duration (golive.shared.plan.durations): its validator is parse_duration."""
    for meta in metadata or []:
        if isinstance(meta, BeforeValidator) and meta.func is parse_duration:
            return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return any(isinstance(m, BeforeValidator) and m.func is parse_duration for m in annotation.__metadata__)
    if origin is Union or (origin is not None and type(annotation).__name__ == "UnionType"):
        return any(_is_duration(arg) for arg in get_args(annotation))
    if type(annotation).__name__ == "UnionType":
        return any(_is_duration(arg) for arg in get_args(annotation))
    return False
