"""When a run may start and what to do before its maintenance window closes."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, WithJsonSchema, field_validator

from golive.shared.plan.base import Strict
from golive.shared.plan.durations import Duration

# A wall-clock time as plans write it ("02:00", "04:00:30"), in the window's own `timezone`. JSON Schema's "time"
# format is RFC 3339's full-time, which requires seconds and an offset: the schema says what the model accepts
# (stored runs' plans are read by this model forever, so it accepts no less than it did: fractions and offsets too).
WallClock = Annotated[time, WithJsonSchema({
    "type": "string",
    "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]+)?)?(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?$",
    "description": "HH:MM or HH:MM:SS, local time in the window's timezone",
})]


class MaintenanceWindow(Strict):
    """When a run may start: ``days`` at ``start``-``end`` local time in ``timezone`` (runbook: Sun 02:00-04:00 UTC)."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    start: WallClock
    end: WallClock
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Helsinki or UTC)") from None
        return value


class Window(Strict):
    """The maintenance window and what to do before it closes."""

    maintenance: MaintenanceWindow | None = None
    rollback: Duration = Field(default=600.0, ge=0, description="time a rollback needs (runbook: under 10 min)")
    at_end: Literal["rollback", "continue"] = Field(
        default="rollback", description="rollback: start compensating while `rollback` still fits in the window")
