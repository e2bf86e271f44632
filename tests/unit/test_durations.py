"""Durations as plan authors write them, in seconds."""

from __future__ import annotations

import math

import pytest

from golive.shared.plan.durations import parse_duration


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("2s", 2.0),
        ("30m", 1800.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("1m30s", 90.0),
        (" 45s ", 45.0),
        ("0s", 0.0),
        (90, 90.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_duration_is_read_as_seconds(written, seconds):
    assert parse_duration(written) == seconds


@pytest.mark.parametrize("written", ["", "   ", "soon", "5 minutes", "10x", "1h-30m", "s", "5sm"])
def test_malformed_duration_is_refused_with_examples(written):
    with pytest.raises(ValueError, match=r"is not a duration \(examples: 45s, 30m, 1h30m, 250ms\)"):
        parse_duration(written)


@pytest.mark.parametrize("written", [-1, -0.5, "-5s", " -1h30m"])
def test_negative_duration_is_refused(written):
    with pytest.raises(ValueError, match="a duration cannot be negative"):
        parse_duration(written)


@pytest.mark.parametrize("written", [math.inf, math.nan, -math.inf])
def test_duration_that_is_not_finite_is_refused(written):
    with pytest.raises(ValueError, match="not a finite duration"):
        parse_duration(written)


@pytest.mark.parametrize("written", [True, None, [5], {"s": 5}])
def test_duration_of_another_type_is_refused(written):
    with pytest.raises(ValueError, match="a duration is a number of seconds or a string like '30m'"):
        parse_duration(written)
