"""The demo app's faults in measured amounts: ``POST /_control`` with an error rate or an added latency, validated at
the edge (a bad body is a 400 that says why and changes nothing), the old modes keeping their meaning.

The app's real handler on a real loopback server in this process: /api/health needs no database, so no pool."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest

from golive.demo.app import AppState, _Handler, set_mode


@pytest.fixture
def app():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.app = AppState(name="canary", pool=None)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def control(url: str, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/_control", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def statuses(url: str, n: int) -> list[int]:
    seen = []
    for _ in range(n):
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=5) as answer:
                seen.append(answer.status)
        except urllib.error.HTTPError as error:
            seen.append(error.code)
    return seen


def test_errors_without_a_rate_still_fail_every_second_answer(app):
    assert control(app, {"mode": "errors"}) == (200, {"deployment": "canary", "mode": "errors"})
    assert statuses(app, 40).count(500) == 20


def test_an_error_rate_fails_about_that_share_of_answers(app):
    status, body = control(app, {"mode": "errors", "error_rate": 0.2})
    assert (status, body) == (200, {"deployment": "canary", "mode": "errors", "error_rate": 0.2})
    failed = statuses(app, 400).count(500)
    assert 40 <= failed <= 120  # 80 expected; the bounds are 5 standard deviations of a binomial(400, 0.2) away


def test_an_error_rate_of_one_fails_every_answer(app):
    control(app, {"mode": "errors", "error_rate": 1})
    assert set(statuses(app, 10)) == {500}


def test_added_latency_delays_every_api_answer_by_at_least_that_much(app):
    assert control(app, {"mode": "latency", "add_ms": 150}) == (200, {"deployment": "canary", "mode": "latency",
                                                                      "add_ms": 150})
    started = time.perf_counter()
    assert statuses(app, 2) == [200, 200]
    assert time.perf_counter() - started >= 0.3  # a lower bound only: a sleep is never shorter than asked


def test_back_to_ok_forgets_the_fault_amounts(app):
    control(app, {"mode": "errors", "error_rate": 1})
    assert control(app, {"mode": "ok"}) == (200, {"deployment": "canary", "mode": "ok"})
    assert set(statuses(app, 5)) == {200}


@pytest.mark.parametrize("body, why", [
    ({"mode": "ok", "error_rate": 0.1}, "error_rate applies to mode errors only"),
    ({"mode": "health", "add_ms": 100}, "add_ms applies to mode latency only"),
    ({"mode": "errors", "error_rate": 0}, "error_rate must be a number in (0, 1]"),
    ({"mode": "errors", "error_rate": 1.5}, "error_rate must be a number in (0, 1]"),
    ({"mode": "errors", "error_rate": "5%"}, "error_rate must be a number in (0, 1]"),
    ({"mode": "errors", "error_rate": True}, "error_rate must be a number in (0, 1]"),
    ({"mode": "latency", "add_ms": -5}, "add_ms must be a number in (0, 60000]"),
    ({"mode": "latency", "add_ms": 600_000}, "add_ms must be a number in (0, 60000]"),
    ({"mode": "latency", "delay": 100}, "unknown field delay; the fields are mode, error_rate, add_ms"),
    ({"mode": "slow"}, "mode must be one of ok, latency, errors, health"),
    (["errors"], "the body must be a JSON object"),
])
def test_a_bad_control_body_is_refused_with_why_and_changes_nothing(app, body, why):
    control(app, {"mode": "errors", "error_rate": 1})
    status, answer = control(app, body)
    assert (status, answer) == (400, {"error": why})
    assert set(statuses(app, 3)) == {500}  # still the fault set before


def test_set_mode_passes_the_amounts(app):
    assert set_mode(app, "latency", add_ms=5) == {"deployment": "canary", "mode": "latency", "add_ms": 5}
    with pytest.raises(ValueError, match="error_rate applies to mode errors only"):
        set_mode(app, "latency", error_rate=0.5)
