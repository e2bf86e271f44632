"""A hold whose duration is a whole number of windows answers, on every supported Python.

On Python 3.11 ``asyncio.wait_for`` (nats-py awaits a PubAck with it) drops a cancellation that arrives as its
future completes: a window feed cancelled while publishing its last window then never stopped, publishing empty
windows forever, and the hold never answered. The feed is now closed, not cancelled mid-publish: whatever a
publish does with a cancellation, the hold ends, and its windows add up to its result. The publish below swallows
a cancellation the way 3.11's wait_for can, at every window, so the case is provoked every time, not by chance."""

from __future__ import annotations

import asyncio

import pytest

from golive.services.prober.run import run_probe
from golive.shared.commands import HttpProbeSpec, LoadSpec, RunProbe
from golive.shared.events import ProbeWindow

# Only the tests marked `timing` below rest on measured latencies or rates (pyproject: markers); the others judge
# classes, counts of at least one, contents or order, and run with the parallel part.


@pytest.mark.timing  # measured latencies or rates decide it
@pytest.mark.timeout(60)
@pytest.mark.parametrize("windows", [2, 3])
async def test_hold_of_whole_windows_answers_even_when_a_publish_swallows_its_cancellation(http_target, windows):
    published: list[ProbeWindow] = []

    async def publish_swallowing_cancel(window: ProbeWindow) -> None:
        published.append(window)
        try:
            await asyncio.sleep(1.0)  # a PubAck on its way, still awaited when the hold ends
        except asyncio.CancelledError:
            pass  # what 3.11's wait_for does when the ack completes as the cancel arrives

    window_s = 0.5
    cmd = RunProbe(probe=HttpProbeSpec(name="app", url=http_target.url("/ok")), duration_s=windows * window_s,
                   load=LoadSpec(mode="open", rate=40), window_s=window_s)
    result = await run_probe(cmd, {}, command_id="cmd", publish_window=publish_swallowing_cancel)

    # a publish slower than a window folds the next window's time into the one after it; none is lost
    assert result.passed and result.windows == len(published) >= 2
    assert [w.index for w in published] == list(range(len(published)))
    assert sum(w.stats.count for w in published) == result.count  # no request lost, none counted twice
    assert sum(w.seconds for w in published) == pytest.approx(windows * window_s, abs=0.02)  # nothing past the end
    count = len(published)
    await asyncio.sleep(2 * window_s)
    assert len(published) == count  # nothing goes on publishing after the hold answered


@pytest.mark.timeout(60)
async def test_a_stopped_hold_answers_even_when_a_publish_swallows_its_cancellation(http_target):
    from golive.services.prober.run import StopSignal

    published: list[ProbeWindow] = []
    stop = StopSignal()

    async def publish_swallowing_cancel(window: ProbeWindow) -> None:
        published.append(window)
        stop.set("stop requested")  # stop arrives while this window's PubAck is awaited
        try:
            await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            pass

    cmd = RunProbe(probe=HttpProbeSpec(name="app", url=http_target.url("/ok")), duration_s=10,
                   load=LoadSpec(mode="open", rate=40), window_s=0.5)
    result = await run_probe(cmd, {}, command_id="cmd", stop=stop, publish_window=publish_swallowing_cancel)

    assert result.stopped == "stop requested" and result.duration_s < 10
    count = len(published)
    await asyncio.sleep(1.0)
    assert len(published) == count


@pytest.mark.timeout(60)
async def test_an_extended_hold_numbers_its_windows_on_from_the_holds_so_a_stage_never_repeats_one(http_target):
    # analysis.inconclusive: extend sends a stage's hold again; its windows go on from the windows the hold sent
    published: list[ProbeWindow] = []

    async def collect(window: ProbeWindow) -> None:
        published.append(window)

    cmd = RunProbe(probe=HttpProbeSpec(name="app", url=http_target.url("/ok")), duration_s=1.5,
                   load=LoadSpec(mode="open", rate=40), window_s=0.5, first_window=3)
    result = await run_probe(cmd, {}, command_id="cmd.extended", publish_window=collect)

    assert result.windows == len(published) >= 2  # the windows this command sent, not the stage's number
    assert [w.index for w in published] == list(range(3, 3 + len(published)))
    # start_s is still counted from this command's start, as it always was
    assert [w.start_s for w in published] == [n * 0.5 for n in range(len(published))]
