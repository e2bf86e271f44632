"""A local HTTP server that receives Slack-format webhook posts: for `golive up`, the demo and tests.

It speaks what Slack's incoming webhooks speak (POST JSON, answer 200 ``ok``), keeps what it received,
and can rehearse a bad day: fail the next N posts with a status (``fail_next``; a 429 carries
``Retry-After: <retry_after>``), or never answer at all (``hang``: the connection stays open until the
server stops). ``hold_if`` holds the posts whose JSON body it picks: they wait, unanswered, until ``release()``
accepts them (or the server stops, or ``drop_held()`` drops them; then they are never answered nor received), so a
test can keep a post in flight while it kills the sender or checks what else gets through. Every attempt is kept
in ``attempts`` with its arrival time, so tests can see retries.

``message_text`` is a received message as a person reads it in Slack, as one line of plain text (`golive up` and the
demo print it): the whole message, not only its title.
"""

from __future__ import annotations

import json
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from golive.stack.process import Started

_SLACK_LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>")
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}  # reorder what a terminal shows


def message_text(body: dict) -> str:
    """A Slack message as Slack shows it, on one line: its text, then each field as ``Title: value`` (attachment
    fields or Block Kit fields), joined by `` | ``. Slack's escapes (``&amp;``, ``&lt;``, ``&gt;``) are undone, a link
    ``<url|label>`` reads ``label: url``, and control characters (a terminal's escape sequences, new lines) are
    dropped: the text is someone else's, printed as text."""
    parts = [_shown(str(body.get("text", "")))]
    for attachment in body.get("attachments") or []:
        for field in attachment.get("fields") or []:
            parts.append(f"{_shown(str(field.get('title', '')))}: {_shown(str(field.get('value', '')))}")
        for block in attachment.get("blocks") or []:
            for field in block.get("fields") or []:
                title, _, value = str(field.get("text", "")).partition("\n")
                parts.append(f"{_shown(title.strip('*'))}: {_shown(value)}")
    return " | ".join(p for p in parts if p)


def slack_line(body: dict) -> str:
    """The line `golive up` and the demo print for a message the local Slack receiver took."""
    return f"slack <- {message_text(body)}"


def _shown(text: str) -> str:
    text = _SLACK_LINK.sub(lambda m: f"{m.group(2)}: {m.group(1)}", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")  # &amp; last: "&amp;gt;" is "&gt;"
    return "".join(" " if ch in "\n\t" else ch for ch in text
                   if ch in "\n\t" or (unicodedata.category(ch) != "Cc" and ch not in _BIDI)).strip()


@dataclass(frozen=True)
class Attempt:
    """One POST as it arrived: when (time.monotonic()), the status it got, its headers."""

    at: float
    status: int | None  # None: never answered
    headers: dict[str, str]


class WebhookSink(Started):
    """Run with ``with WebhookSink() as sink: sink.url``; ``sink.received`` holds the JSON bodies accepted."""

    def __init__(self, port: int = 0, on_message: Callable[[dict], None] | None = None,
                 path: str = "/services/local/webhook") -> None:
        self.received: list[dict] = []
        self.attempts: list[Attempt] = []
        self.fail_next: list[int] = []
        self.retry_after = "0"
        self.hang = False
        self.hold_if: Callable[[dict], bool] | None = None
        self._held: list[dict] = []
        self._release = threading.Event()
        self._drop = threading.Event()
        self.path = path
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._on_message = on_message
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                headers = {k: v for k, v in self.headers.items()}
                with sink._lock:
                    hang = sink.hang
                    status = 200 if hang else (sink.fail_next.pop(0) if sink.fail_next else 200)
                    sink.attempts.append(Attempt(time.monotonic(), None if hang else status, headers))
                if hang:
                    sink._stopping.wait()  # hold the connection open, answer nothing
                    return
                if status != 200:
                    self._answer(status, b"rate_limited" if status == 429 else b"error")
                    return
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    self._answer(400, b"invalid_payload")
                    return
                if not sink._held_then_released(body):
                    return  # the server stopped while holding it: never answered, never received
                with sink._lock:
                    sink.received.append(body)
                if sink._on_message:
                    sink._on_message(body)
                self._answer(200, b"ok")

            def _answer(self, status: int, text: bytes) -> None:
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", sink.retry_after)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{self.path}"

    def _held_then_released(self, body: dict) -> bool:
        """Hold ``body`` while ``hold_if`` picks it; True once released (or never held), False if the server stopped."""
        with self._lock:
            hold = self.hold_if is not None and self.hold_if(body)
            if not hold:
                return True
            self._held.append(body)
            release, drop = self._release, self._drop
        while not (release.is_set() or drop.is_set() or self._stopping.is_set()):
            release.wait(0.05)
        with self._lock:
            self._held.remove(body)
        return release.is_set() and not drop.is_set()  # dropped stays dropped, whatever a release did after

    def held(self) -> list[dict]:
        """The bodies of the posts held now (arrived, not answered)."""
        with self._lock:
            return list(self._held)

    def release(self) -> None:
        """Accept every post held now (posts arriving later are held again while ``hold_if`` picks them)."""
        with self._lock:
            release, self._release = self._release, threading.Event()
        release.set()

    def drop_held(self) -> None:
        """Answer and keep none of the posts held now, as if their connections broke before the receiver took them
        (a sender killed mid-post); posts arriving later are held again while ``hold_if`` picks them."""
        with self._lock:
            drop, self._drop = self._drop, threading.Event()
        drop.set()

    def wait_until(self, condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        """Wait until ``condition()`` holds; return whether it did."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def texts(self) -> list[str]:
        with self._lock:
            return [m.get("text", "") for m in self.received]

    def wait_for(self, predicate: Callable[[list[dict]], bool], timeout_s: float = 30.0) -> list[dict]:
        """Wait until ``predicate(received)`` holds (messages arrive after the event that caused them)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                received = list(self.received)
            if predicate(received) or time.monotonic() > deadline:
                return received
            time.sleep(0.05)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # release hanging requests first, so shutdown does not wait on them
        self._server.shutdown()
        self._server.server_close()

