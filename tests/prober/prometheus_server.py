"""A real Prometheus server for the prometheus probe's tests (golive/demo/prometheus.py: Debian's
/usr/bin/prometheus, which `make prometheus` installs) on a free loopback port, scraping the given targets every
second, its storage in a temporary dir; and steady user traffic for it to see."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from golive.demo.prometheus import HOW_TO_GET_IT, DemoPrometheus, prometheus_binary


@contextmanager
def prometheus(targets: list[str]) -> Iterator[str]:
    """A Prometheus scraping ``targets`` (host:port) every second; yields its base URL; stopped on the way out.
    Without the binary the test fails saying how to get it (never skipped)."""
    if prometheus_binary() is None:
        pytest.fail(HOW_TO_GET_IT)
    root = Path(tempfile.mkdtemp(prefix="golive-prometheus-"))
    try:
        with DemoPrometheus(root, targets, scrape_s=1.0) as server:
            yield server.url
    finally:
        shutil.rmtree(root, ignore_errors=True)


def wait_for_series(base: str, promql: str, series: int, timeout_s: float = 60.0) -> None:
    """Wait (a readiness wait, not an assertion) until ``promql`` returns ``series`` series all above 0."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        answer = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5).json()
        last = answer
        result = answer.get("data", {}).get("result", [])
        if len(result) == series and all(float(r["value"][1]) > 0 for r in result):
            return
        time.sleep(0.2)
    raise TimeoutError(f"prometheus never had {series} series of {promql}: {last}")


class Traffic:
    """Steady user traffic: a thread sending GET ``path`` to each base URL ``rate`` times a second."""

    def __init__(self, bases: list[str], rate: float = 40.0, path: str = "/api/health") -> None:
        self.bases, self.rate, self.path = bases, rate, path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-traffic", daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5, trust_env=False) as client:
            i = 0
            start = time.monotonic()
            while not self._stop.is_set():
                for base in self.bases:
                    try:
                        client.get(base + self.path)
                    except httpx.HTTPError:
                        pass
                i += 1
                self._stop.wait(max(0.0, start + i / self.rate - time.monotonic()))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
