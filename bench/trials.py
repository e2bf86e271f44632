"""What the round-trip benchmarks share: their trial-count options and how they print a spread of times."""

from __future__ import annotations

import argparse
import statistics


def trials_parser(doc: str, unit: str, n: int = 200, warmup: int = 10) -> argparse.ArgumentParser:
    """The options every round-trip benchmark takes: ``--n`` measured ``unit`` after ``--warmup`` uncounted ones;
    described by the first line of the benchmark's ``doc``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--n", type=int, default=n, help=f"measured {unit} (default {n})")
    parser.add_argument("--warmup", type=int, default=warmup, help=f"uncounted {unit} first (default {warmup})")
    return parser


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def print_spread(figures: dict[str, list[float]]) -> dict[str, float]:
    """Print each side's round trips (seconds) in ms: n, median, p90, p99, max; returns each side's p99 in ms."""
    p99 = {}
    for side, values in figures.items():
        ms = [v * 1000 for v in values]
        p99[side] = percentile(ms, 99)
        print(f"{side:<9} n {len(ms):>4}  median {statistics.median(ms):.3f} ms  p90 {percentile(ms, 90):.3f} ms  "
              f"p99 {p99[side]:.3f} ms  max {max(ms):.3f} ms")
    return p99
