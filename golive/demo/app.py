"""The demo's application: a small HTTP app run twice, as the stable and the canary deployment.

It stands in for the runbook's Vercel app: ``/api/health`` (what `curl -f .../api/health` checks) and one
endpoint per runbook query (``/api/signup_exists``, ``/api/review_list``, ``/api/stripe_upsert``,
``/api/netvisor_pick``; ``/api/smoke`` runs all four, the runbook's smoke_test_api.py) against the demo
database through a psycopg pool. Writes are rolled back so that a long demo leaves the tables as seeded.

``POST /_control {"mode": ...}`` makes a deployment misbehave, the way a bad release does:

- ``latency``: every /api answer 600 ms late; ``{"mode": "latency", "add_ms": 300}``: that many ms late instead
- ``errors``: every second /api answer is a 500 (behind a 10% canary that is 5% of production traffic);
  ``{"mode": "errors", "error_rate": 0.05}``: each answer a 500 with that probability instead (bench/detection.py's
  recorded faults are measured amounts)
- ``health``: /api/health answers 503
- ``ok``: back to normal

Every answer names the deployment that gave it in the ``x-golive-deployment`` header (Vercel's answers name theirs
too): a check on the production alias tells the canary's answers from stable's by it.

``GET /metrics`` is the deployment's own Prometheus exposition (prometheus-client): every /api answer counted by
deployment and status class (``golive_demo_requests_total{deployment, code}``, code ``2xx``..``5xx``) and timed
(``golive_demo_request_duration_seconds{deployment}``, a histogram): what real user traffic looks like to the
``prometheus`` probe kind (services/prober/prometheus_probe.py).

Run one with ``python -m golive.demo.app --name canary --port 8081`` (the database URL comes from the
environment variable ``--database-url-env``, default GOLIVE_DATABASE_URL); ``DemoApp`` starts and stops one
as a child process.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

MODES = ("ok", "latency", "errors", "health")
# the http probe's default deployment_header (shared/plan/probes/http.py), spelled out: importing the plan models would
# add a second to every start of the app; tests/prober/test_alias_by_deployment.py fails if the two drift apart
DEPLOYMENT_HEADER = "x-golive-deployment"
LATENCY_S = 0.6  # +600 ms: over the runbook's 400 ms P95 whatever the app's own speed
MAX_ADD_MS = 60_000  # a minute: longer would only hold the app's threads, no probe waits that long

# the runbook's four queries as the app runs them (golive.demo.data.RUNBOOK_QUERIES are the probes' versions)
QUERIES = {
    "signup_exists": ("SELECT EXISTS (SELECT 1 FROM auth.users WHERE email = %s)", "email"),
    "review_list": ("SELECT id, status, created_at FROM review_items WHERE user_id = %s "
                    "ORDER BY created_at DESC LIMIT 20", "user_id"),
    "stripe_upsert": ("INSERT INTO stripe_events (stripe_id, type, created_at, payload) VALUES (%s, 'invoice.paid', now(), '{}') "
                      "ON CONFLICT (stripe_id) DO UPDATE SET payload = EXCLUDED.payload RETURNING id", "stripe_id"),
    "netvisor_pick": ("UPDATE netvisor_queue SET status = 'processing', picked_at = now() WHERE id = ("
                      "SELECT id FROM netvisor_queue WHERE status = 'pending' ORDER BY created_at LIMIT 1 "
                      "FOR UPDATE SKIP LOCKED) RETURNING id", None),
}
WRITES = {"stripe_upsert", "netvisor_pick"}
# latency buckets from 1 ms (a health check) to 5 s (the injected 600 ms sits between 0.5 and 0.75)
BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)


class Metrics:
    """One deployment's request metrics in a registry of its own (not the process-wide default one)."""

    def __init__(self, deployment: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("golive_demo_requests", "API answers by deployment and status class",
                                ["deployment", "code"], registry=self.registry).labels
        self.duration = Histogram("golive_demo_request_duration_seconds", "API answer latency by deployment",
                                  ["deployment"], buckets=BUCKETS_S, registry=self.registry).labels(deployment)
        self.deployment = deployment
        for code in ("2xx", "4xx", "5xx"):  # every series exists from the start: a rate over it is 0, not absent
            self.requests(deployment, code)

    def observe(self, status: int, seconds: float) -> None:
        self.requests(self.deployment, f"{status // 100}xx").inc()
        self.duration.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True)
class Control:
    """A deployment's behaviour as ``POST /_control`` sets it: the mode and, for errors and latency, its amount."""

    mode: str = "ok"
    error_rate: float | None = None  # mode errors: the probability of a 500; None: every second answer
    add_ms: float | None = None  # mode latency: the delay; None: the app's latency_s

    @classmethod
    def parse(cls, body: object) -> Control:
        """The control a request body asks for; ValueError saying why when it is not one."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        fields = ("mode", "error_rate", "add_ms")
        if unknown := [key for key in body if key not in fields]:
            raise ValueError(f"unknown field {', '.join(map(str, unknown))}; the fields are {', '.join(fields)}")
        mode = body.get("mode")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        error_rate, add_ms = body.get("error_rate"), body.get("add_ms")
        if error_rate is not None:
            if mode != "errors":
                raise ValueError("error_rate applies to mode errors only")
            if not _number_in(error_rate, 1):
                raise ValueError("error_rate must be a number in (0, 1]")
        if add_ms is not None:
            if mode != "latency":
                raise ValueError("add_ms applies to mode latency only")
            if not _number_in(add_ms, MAX_ADD_MS):
                raise ValueError(f"add_ms must be a number in (0, {MAX_ADD_MS}]")
        return cls(mode, error_rate, add_ms)

    def shown(self) -> dict:
        """The control as the answer to /_control shows it: the amounts only where set."""
        return {"mode": self.mode, **{k: v for k, v in (("error_rate", self.error_rate), ("add_ms", self.add_ms))
                                      if v is not None}}


def _number_in(value: object, most: float) -> bool:
    # bool is an int to Python, never an amount to a person
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= most


@dataclass
class AppState:
    """What a request handler shares: the deployment's name, its control (mode), the pool, sample parameters."""

    name: str
    pool: object  # psycopg_pool.ConnectionPool
    control: Control = field(default_factory=Control)
    latency_s: float = LATENCY_S
    counter: itertools.count = field(default_factory=itertools.count)
    samples: dict[str, list] = field(default_factory=dict)
    metrics: Metrics | None = None

    def __post_init__(self) -> None:
        self.metrics = self.metrics or Metrics(self.name)

    @property
    def mode(self) -> str:
        return self.control.mode

    def delay_s(self) -> float:
        return self.latency_s if self.control.add_ms is None else self.control.add_ms / 1000

    def fails(self) -> bool:
        """Mode errors: whether this answer is a 500."""
        if self.control.error_rate is None:
            return next(self.counter) % 2 == 0
        return random.random() < self.control.error_rate

    def load_samples(self) -> None:
        with self.pool.connection() as conn:  # type: ignore[attr-defined]
            self.samples["email"] = [r[0] for r in conn.execute("SELECT email FROM auth.users ORDER BY id LIMIT 1000")]
            self.samples["user_id"] = [r[0] for r in conn.execute("SELECT id FROM auth.users ORDER BY id LIMIT 1000")]

    def run_query(self, name: str, value: str | None) -> object:
        sql, param = QUERIES[name]
        if param == "stripe_id":
            value = value or f"evt_app_{self.name}_{next(self.counter)}"
        elif param and value is None:
            value = random.choice(self.samples[param]) if self.samples.get(param) else None
        args = (value,) if param else ()
        with self.pool.connection() as conn:  # type: ignore[attr-defined]
            with conn.transaction(force_rollback=name in WRITES):
                rows = conn.execute(sql, args).fetchall()
        return [list(map(str, row)) for row in rows]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Envoy's upstream connections expect
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms Nagle stalls

    @property
    def app(self) -> AppState:
        return self.server.app  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        self._started: float | None = None
        url = urlsplit(self.path)
        if url.path == "/_control":
            return self._control()
        if url.path == "/metrics":
            return self._metrics()
        app = self.app
        self._started = time.perf_counter()  # an /api answer: counted and timed when it is sent (_answer)
        if not url.path.startswith("/api/"):
            return self._answer(404, {"error": f"no route {url.path}"})
        if app.mode == "latency":
            time.sleep(app.delay_s())
        if app.mode == "errors" and app.fails():
            return self._answer(500, {"error": "injected error (mode errors)", "deployment": app.name})
        what = url.path.removeprefix("/api/")
        if what == "health":
            if app.mode == "health":
                return self._answer(503, {"status": "unhealthy", "deployment": app.name})
            return self._answer(200, {"status": "ok", "deployment": app.name})
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            if what == "smoke":
                result = {name: len(app.run_query(name, None)) for name in QUERIES}
            elif what in QUERIES:
                param = QUERIES[what][1]
                result = app.run_query(what, query.get(param) if param else None)
            else:
                return self._answer(404, {"error": f"no endpoint {what}"})
        except Exception as exc:  # the database's error is the answer, as a real app's 500
            return self._answer(500, {"error": type(exc).__name__, "deployment": app.name})
        self._answer(200, {"ok": True, "deployment": app.name, "result": result})

    def _control(self) -> None:
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            try:
                control = Control.parse(json.loads(self.rfile.read(length) or b"{}"))
            except ValueError as exc:  # a JSONDecodeError is one too: its message says where the body broke
                return self._answer(400, {"error": str(exc)})
            self.app.control = control
        self._answer(200, {"deployment": self.app.name, **self.app.control.shown()})

    def _metrics(self) -> None:
        assert self.app.metrics is not None
        data = self.app.metrics.exposition()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, status: int, body: dict) -> None:
        if self._started is not None and self.app.metrics is not None:
            self.app.metrics.observe(status, time.perf_counter() - self._started)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header(DEPLOYMENT_HEADER, self.app.name)  # which deployment answered, behind the alias too
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:  # quiet: thousands of requests per stage
        pass


def serve(name: str, port: int, database_url: str, pool_size: int = 8, latency_s: float = LATENCY_S) -> None:
    """Serve the app on 127.0.0.1:``port`` until SIGTERM/SIGINT; mode ``latency`` adds ``latency_s``."""
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(database_url, min_size=2, max_size=pool_size, kwargs={"autocommit": True}, open=True)
    state = AppState(name=name, pool=pool, latency_s=latency_s)
    state.load_samples()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    server.app = state  # type: ignore[attr-defined]
    stopping = threading.Event()

    def stop(*_: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        pool.close()


@dataclass
class DemoApp:
    """One deployment of the demo app as a child process on 127.0.0.1 (a context manager)."""

    name: str
    database_url: str
    log_dir: Path
    port: int = 0
    latency_s: float = LATENCY_S
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> DemoApp:
        from golive.stack.process import free_port

        self.port = self.port or free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, GOLIVE_DEMO_APP_DATABASE_URL=self.database_url, PYTHONUNBUFFERED="1")
        log = open(self.log_dir / f"app-{self.name}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "golive.demo.app", "--name", self.name, "--port", str(self.port),
             "--database-url-env", "GOLIVE_DEMO_APP_DATABASE_URL", "--latency-s", str(self.latency_s)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"demo app {self.name} exited with code {self.proc.returncode} during start "
                                   f"(log: {self.log_dir / f'app-{self.name}.log'})")
            try:
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"demo app {self.name} not answering after {timeout_s:.0f} s")
            time.sleep(0.05)

    def set_mode(self, mode: str, **amounts: float) -> None:
        """Make this deployment misbehave (``latency``, ``errors``, ``health``) or behave (``ok``); ``amounts``:
        ``error_rate`` or ``add_ms`` (Control)."""
        set_mode(self.url, mode, **amounts)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> DemoApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def set_mode(base_url: str, mode: str, **amounts: float) -> dict:
    """POST /_control {"mode": mode, **amounts} to the app at ``base_url``; its answer. ValueError when the app
    would refuse it."""
    body = Control.parse({"mode": mode, **amounts}).shown()
    request = urllib.request.Request(f"{base_url}/_control", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The golive demo app (one deployment)")
    parser.add_argument("--name", required=True, help="deployment name, e.g. stable or canary")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url-env", default="GOLIVE_DATABASE_URL",
                        help="environment variable holding the database URL")
    parser.add_argument("--latency-s", type=float, default=LATENCY_S, help="what mode latency adds to each answer")
    args = parser.parse_args(argv)
    url = os.environ.get(args.database_url_env)
    if not url:
        parser.error(f"environment variable {args.database_url_env} is not set")
    serve(args.name, args.port, url, latency_s=args.latency_s)


if __name__ == "__main__":
    main()
