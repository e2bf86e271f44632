"""A real HTTP server for probing, run as its own process (so its threads never share the test's GIL).

``python -m tests.prober.http_target PORT`` listens on 127.0.0.1:PORT (HTTP/1.1 keep-alive, a thread per
connection) and answers:

- ``GET /ok?delay_ms=N``: 200 "ok" after N ms (default 0)
- ``GET /status/CODE``: that status
- ``POST /stall?seconds=S``: every other request waits until S seconds from now have passed (the stall)
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

_stall_until = 0.0
_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: without this, 40 ms delayed ACKs

    def log_message(self, *args) -> None:  # quiet: thousands of requests per test
        pass

    def _answer(self, status: int, body: bytes = b"ok") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        global _stall_until
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if url.path == "/stall":
            seconds = float(parse_qs(url.query).get("seconds", ["1"])[0])
            with _lock:
                _stall_until = time.monotonic() + seconds
            self._answer(200, b"stalling")
            return
        self._answer(404, b"no such path")

    def do_GET(self) -> None:
        url = urlparse(self.path)
        wait = _stall_until - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if url.path == "/ok":
            delay_ms = float(parse_qs(url.query).get("delay_ms", ["0"])[0])
            if delay_ms:
                time.sleep(delay_ms / 1000)
            self._answer(200, b"ok")
        elif url.path.startswith("/status/"):
            self._answer(int(url.path.rsplit("/", 1)[1]), b"status")
        else:
            self._answer(404, b"no such path")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


if __name__ == "__main__":
    server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    print("listening", flush=True)
    server.serve_forever()
