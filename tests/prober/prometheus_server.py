"""A real Prometheus server for the prometheus probe's tests: Debian's /usr/bin/prometheus (`make prometheus`
installs it), on a free loopback port, scraping the given targets every second, its storage in a temporary dir."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from golive.stack.process import free_port, stop_process, wait_for_port

SCRAPE_S = 1
HOW_TO_GET_IT = ("no prometheus binary: `make prometheus` installs Debian's package as root "
                 "(apt-get install prometheus; brew install prometheus on a Mac)")


def prometheus_binary() -> str:
    """The prometheus binary, or the test fails saying how to get it (never skipped)."""
    found = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if found is None:
        pytest.fail(HOW_TO_GET_IT)
    return found


@contextmanager
def prometheus(targets: list[str]) -> Iterator[str]:
    """A Prometheus scraping ``targets`` (host:port) every second; yields its base URL; stopped on the way out."""
    binary = prometheus_binary()
    root = Path(tempfile.mkdtemp(prefix="golive-prometheus-"))
    config = root / "prometheus.yml"
    listed = ", ".join(f'"{t}"' for t in targets)
    config.write_text(f"global: {{scrape_interval: {SCRAPE_S}s, evaluation_interval: {SCRAPE_S}s}}\n"
                      f"scrape_configs:\n  - job_name: demo\n    static_configs: [{{targets: [{listed}]}}]\n")
    port = free_port()
    log = open(root / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root)
    try:
        wait_for_port(port, 30, proc, "prometheus")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc, 10)
        log.close()
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
