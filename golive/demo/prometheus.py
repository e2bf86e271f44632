"""A Prometheus server scraping the demo app's deployments: what the ``prometheus`` probe kind reads in the demo
and in its tests.

Prometheus has no wheel: this is Debian's /usr/bin/prometheus (`make prometheus` installs the package as root;
``brew install prometheus`` on a Mac), run as a child process on a free loopback port with a temporary config
(every target scraped each ``scrape_s`` seconds) and its storage in a directory of its own, stopped by its PID
(stack/process.py's ChildServer).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from golive.stack.process import ChildServer, EmbeddedError, free_port

HOW_TO_GET_IT = ("no prometheus binary: `make prometheus` installs Debian's package as root "
                 "(apt-get install prometheus; brew install prometheus on a Mac)")


def prometheus_binary() -> str | None:
    """Where the prometheus binary is, or None."""
    found = shutil.which("prometheus")
    return found or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)


class DemoPrometheus(ChildServer):
    """Prometheus scraping ``targets`` (``host:port``, each serving /metrics) into ``root`` (a context manager)."""

    def __init__(self, root: Path, targets: list[str], scrape_s: float = 1.0) -> None:
        self.root, self.targets, self.scrape_s = root, targets, scrape_s
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        listed = ", ".join(f'"{target}"' for target in self.targets)
        every = f"{max(1, round(self.scrape_s * 1000))}ms"  # PromQL durations are whole numbers: 500ms, not 0.5s
        return (f"global: {{scrape_interval: {every}, scrape_timeout: {every}, evaluation_interval: {every}}}\n"
                f"scrape_configs:\n  - job_name: golive-demo\n    static_configs: [{{targets: [{listed}]}}]\n")

    def start(self, timeout_s: float = 30.0) -> DemoPrometheus:
        binary = prometheus_binary()
        if binary is None:
            raise EmbeddedError(HOW_TO_GET_IT)
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "prometheus.yml"
        config.write_text(self.config())
        self.port = free_port()
        self.launch([binary, f"--config.file={config}", f"--storage.tsdb.path={self.root / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1d"],
                    self.root / "prometheus.log", cwd=self.root)
        self.listening(self.port, timeout_s, "prometheus")
        return self


def main(argv: list[str] | None = None) -> None:
    """``python -m golive.demo.prometheus 127.0.0.1:PORT ...``: Prometheus scraping the demo app's deployments (the
    ports `golive up` prints) until Ctrl-C; its URL is what GOLIVE_PROMETHEUS_URL names for a prometheus probe."""
    import argparse
    import signal
    import threading

    parser = argparse.ArgumentParser(description="Prometheus scraping the golive demo app's deployments")
    parser.add_argument("targets", nargs="+", help="host:port of each deployment (each serves /metrics)")
    parser.add_argument("--dir", type=Path, default=Path(".golive/prometheus"), help="config and storage")
    parser.add_argument("--scrape-s", type=float, default=5.0, help="seconds between scrapes")
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        with DemoPrometheus(args.dir, args.targets, args.scrape_s) as server:
            print(f"GOLIVE_PROMETHEUS_URL={server.url}", flush=True)
            done.wait()
    except EmbeddedError as exc:
        parser.exit(1, f"{exc}\n")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
