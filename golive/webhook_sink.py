"""A local HTTP server that receives Slack-format webhook posts: for `golive up`, the demo and tests.

It speaks what Slack's incoming webhooks speak (POST JSON, answer 200 ``ok``), keeps what it received,
and can be told to fail the next N posts with a status, to rehearse a flaky Slack.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookSink:
    """Run with ``with WebhookSink() as sink: sink.url``; ``sink.received`` holds the JSON bodies."""

    def __init__(self, port: int = 0, on_message: Callable[[dict], None] | None = None) -> None:
        self.received: list[dict] = []
        self.fail_next: list[int] = []
        self._lock = threading.Lock()
        self._on_message = on_message
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with sink._lock:
                    status = sink.fail_next.pop(0) if sink.fail_next else 200
                if status != 200:
                    self._answer(status, b"rate_limited" if status == 429 else b"error")
                    return
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    self._answer(400, b"invalid_payload")
                    return
                with sink._lock:
                    sink.received.append(body)
                if sink._on_message:
                    sink._on_message(body)
                self._answer(200, b"ok")

            def _answer(self, status: int, text: bytes) -> None:
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/services/local/webhook"

    def texts(self) -> list[str]:
        with self._lock:
            return [m.get("text", "") for m in self.received]

    def start(self) -> WebhookSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
