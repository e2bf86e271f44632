"""The http probe against a real local HTTP server: curl -f semantics, error classes, coordinated
omission, and canary against stable."""

from __future__ import annotations

import asyncio
import statistics

import pytest

from golive.services.prober.kinds import ProbeSetupError
from golive.services.prober.run import run_probe, run_probes
from golive.shared.commands import HttpProbeSpec, LoadSpec, RunProbe, Thresholds
from golive.shared.events import ProbeWindow
from golive.stack.process import free_port

# Only the tests marked `timing` below rest on measured latencies or rates (pyproject: markers); the others judge
# classes, counts of at least one, contents or order, and run with the parallel part.


def http_command(url: str, *, duration_s: float = 0.5, concurrency: int = 1, load: LoadSpec = LoadSpec(),
                 baseline_url: str | None = None, thresholds: Thresholds = Thresholds(), window_s: float | None = None,
                 **spec) -> RunProbe:
    return RunProbe(
        probe=HttpProbeSpec(name=spec.pop("name", "app"), url=url, **spec),
        baseline=HttpProbeSpec(name="stable", url=baseline_url, **spec) if baseline_url else None,
        duration_s=duration_s, concurrency=concurrency, load=load, thresholds=thresholds, window_s=window_s,
    )


async def test_health_check_passes_on_200_and_fails_like_curl_f_on_errors(http_target):
    ok = await run_probe(http_command(http_target.url("/ok"), body_contains="ok"), {})
    not_found = await run_probe(http_command(http_target.url("/status/404"), duration_s=0.2), {})
    broken = await run_probe(http_command(http_target.url("/status/503"), duration_s=0.2), {})
    redirect = await run_probe(http_command(http_target.url("/status/302"), duration_s=0.2, expect_status=200), {})
    wrong_body = await run_probe(http_command(http_target.url("/ok"), duration_s=0.2, body_contains="healthy"), {})

    assert ok.count > 0 and ok.errors == 0
    assert set(not_found.errors_by_class) == {"http_4xx"} and not_found.count == 0
    assert set(broken.errors_by_class) == {"http_5xx"} and broken.count == 0
    assert set(redirect.errors_by_class) == {"unexpected_status"}
    assert set(wrong_body.errors_by_class) == {"body_mismatch"}


async def test_a_failed_probe_says_which_endpoint_how_many_requests_failed_and_how(http_target):
    url = http_target.url("/status/404?token=s3cret")
    failed = await run_probe(http_command(url, duration_s=0.3, thresholds=Thresholds(error_rate_pct=0)), {})

    assert not failed.passed
    requests = failed.count + failed.errors
    assert failed.summary.startswith(
        f"app: GET {http_target.url('/status/404')}: {failed.errors:,} of {requests:,} failed (http_4xx {failed.errors:,}); "
        f"error rate 100% > 0% over {requests:,} requests"), failed.summary
    assert "s3cret" not in failed.summary


async def test_header_values_come_from_the_environment_and_a_missing_one_is_named(http_target):
    cmd = http_command(http_target.url("/ok"), duration_s=0.2, headers_env={"Authorization": "PROBE_TOKEN"})
    ok = await run_probe(cmd, {"PROBE_TOKEN": "Bearer s3cret"})
    assert ok.count > 0 and ok.errors == 0
    with pytest.raises(ProbeSetupError, match="PROBE_TOKEN") as missing:
        await run_probe(cmd, {})
    assert "s3cret" not in str(missing.value)


@pytest.mark.timing  # measured latencies or rates decide it
async def test_target_down_dns_failure_and_slow_response_are_counted_by_class_on_schedule(http_target):
    load = LoadSpec(mode="open", rate=50)
    down, no_name, slow = await asyncio.gather(
        run_probe(http_command(f"http://127.0.0.1:{free_port()}/health", duration_s=1.0, load=load, concurrency=2), {}),
        run_probe(http_command("http://no-such-host.invalid/health", duration_s=1.0, load=load, concurrency=4,
                               timeout_ms=500), {}),
        run_probe(http_command(http_target.url("/ok?delay_ms=400"), duration_s=1.0, load=load, concurrency=4,
                               timeout_ms=100), {}),
    )
    assert set(down.errors_by_class) == {"connection"} and down.errors_by_class["connection"] >= 45
    # the machine's resolver answers "no such name" (dns), or not at all within the timeout (timeout)
    assert set(no_name.errors_by_class) <= {"dns", "timeout", "unsent"} and no_name.errors_by_class["dns"] >= 25
    assert slow.errors_by_class.get("timeout", 0) >= 20 and slow.count == 0


@pytest.mark.timing  # measured latencies or rates decide it
async def test_a_stall_shows_as_latency_in_open_loop_and_as_a_lower_rate_in_closed_loop(http_target):
    """Coordinated omission: one 1 s stall in a 10 s run at 200/s."""
    windows: list[ProbeWindow] = []

    async def collect(window: ProbeWindow) -> None:
        windows.append(window)

    open_loop = http_command(http_target.url("/ok"), duration_s=10, concurrency=8, window_s=1.0,
                             load=LoadSpec(mode="open", rate=200), name="open")
    closed_loop = http_command(http_target.url("/ok?delay_ms=5"), duration_s=10, concurrency=1, window_s=1.0,
                               name="closed")

    async def stall_later() -> None:
        await asyncio.sleep(4.0)
        await asyncio.to_thread(http_target.stall, 1.0)

    opened, closed, _ = await asyncio.gather(run_probe(open_loop, {}, publish_window=collect),
                                             run_probe(closed_loop, {}, publish_window=collect), stall_later())

    assert opened.errors == 0 and closed.errors == 0
    assert opened.p99_ms >= 500, opened.summary  # requests due during the stall waited for it
    assert opened.achieved_rate >= 0.95 * 200  # and the schedule did not slow down to suit the server
    assert closed.p99_ms < 500, closed.summary  # the closed loop hides the stall from its percentiles...
    rates = [w.stats.achieved_rate for w in windows if w.probe == "closed"]
    assert len(rates) == 10
    assert min(rates) < 0.5 * statistics.median(rates), rates  # ...and shows it only as a lower achieved rate


def canary_against_stable(http_target, canary_delay_ms: int, stable_delay_ms: int) -> RunProbe:
    """A canary answering after ``canary_delay_ms`` against a stable answering after ``stable_delay_ms``, 60 requests a
    second each for 3 s, with a tolerance of 10 ms on the p95's increase."""
    return http_command(http_target.url(f"/ok?delay_ms={canary_delay_ms}"),
                        baseline_url=http_target.url(f"/ok?delay_ms={stable_delay_ms}"), duration_s=3.0, concurrency=8,
                        load=LoadSpec(mode="open", rate=60), thresholds=Thresholds(p95_increase_ms=10))


@pytest.mark.timing  # measured latencies or rates decide it
async def test_canary_30_ms_slower_than_stable_is_worse_with_confidence(http_target):
    cmd = canary_against_stable(http_target, 32, 2)
    result = await run_probe(cmd, {})
    comparison = result.comparison
    assert comparison is not None and comparison.verdict == "worse", comparison
    # judged sequentially: worse as soon as the evidence suffices, at the plan's alpha over every look
    assert comparison.method == "sequential-sign" and comparison.p_value <= cmd.alpha
    assert comparison.p95_delta_ms > 10  # a difference that matters, beyond the tolerance
    assert result.stopped is not None and "the canary is worse than stable: canary " in result.stopped
    assert not result.passed and "against the baseline: worse: canary " in result.summary


async def test_a_failing_canary_ends_the_whole_hold_as_soon_as_the_evidence_suffices(http_target):
    """20 requests a second for a minute were due; the canary failing every request ends the hold (and the other
    check of it) after a handful of pairs, saying why with the sequential p-value."""
    canary = http_command(http_target.url("/status/503"), baseline_url=http_target.url("/ok"), duration_s=60.0,
                          concurrency=2, load=LoadSpec(mode="open", rate=20), thresholds=Thresholds(p95_increase_ms=50))
    other = http_command(http_target.url("/ok"), duration_s=60.0, load=LoadSpec(mode="open", rate=5), name="other")
    results = await run_probes([canary, other], {})
    failed, stopped = results
    assert failed.comparison is not None and failed.comparison.verdict == "worse"
    assert failed.finding == "fail" and failed.count + failed.errors < 20 * 60
    assert failed.stopped is not None and "canary error rate 100.0% vs stable 0.0%, sequential p = " in failed.stopped
    assert stopped.stopped == failed.stopped and stopped.finding == "pass"


@pytest.mark.timing  # measured latencies or rates decide it
async def test_equal_canary_and_stable_make_no_difference(http_target):
    result = await run_probe(canary_against_stable(http_target, 2, 2), {})
    assert result.comparison is not None and result.comparison.verdict == "no difference", result.comparison
    assert result.passed, result.summary
    assert result.baseline is not None and result.baseline.count >= 150


async def test_a_failure_no_probe_kind_foresaw_is_counted_and_the_probe_goes_on(http_target):
    result = await run_probe(http_command("http://[::1/health", duration_s=0.3), {})  # an URL httpx cannot parse
    assert result.count == 0 and set(result.errors_by_class) == {"other"} and not result.passed


async def test_a_target_that_trickles_its_answer_is_a_timeout_and_the_probe_ends_on_time():
    """httpx bounds each read, not a whole answer: a body sent a byte at a time would hold every worker, and
    the hold would never answer. The probe's own timeout bounds the request."""
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            while True:
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/slow"
    try:
        result = await asyncio.wait_for(  # a hold that never answered would hang here
            run_probe(http_command(url, duration_s=1.0, concurrency=2, timeout_ms=300,
                                   load=LoadSpec(mode="open", rate=10)), {}), 20)
    finally:
        server.close()

    assert result.count == 0 and result.errors_by_class.get("timeout", 0) >= 2, result
