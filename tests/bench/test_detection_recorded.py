"""bench/detection.py's recorded request streams (its run at a tiny size is in test_bench_smoke.py): a recording is
made by the prober's own load code on the embedded stack; a replayed
hold keeps each due instant's canary and stable requests together and leaves out what the prober did not count."""

from __future__ import annotations

import gzip
import subprocess
import sys

from bench.stream_recording import FAULTS, HEALTHY_STREAMS, NOT_COUNTED, RATE, RECORDED, Pair, RecordedTraffic, Request, load
from tests.harness import REPO


def test_the_committed_healthy_recordings_hold_ten_minutes_of_pairs_and_every_fault_has_one() -> None:
    for name in HEALTHY_STREAMS.values():
        assert len(load(name)) >= 0.95 * 600 * RATE, name  # 200 A/A holds are cut from these by block resampling
    for name, _ in FAULTS.values():
        assert len(load(name)) > 0, name
    assert sum(path.stat().st_size for path in RECORDED.glob("*.csv.gz")) < 2_000_000


def test_a_replayed_hold_keeps_pairs_together_and_skips_pairs_the_prober_did_not_count(tmp_path) -> None:
    rows = ["i,side,ms,answer_ms,error",
            "0,c,5.00,4.00,", "0,s,7.00,5.00,",  # lateness 1 ms and 2 ms: the pair was sent 1 ms late
            "1,c,,,http_5xx", "1,s,3.00,3.00,",
            "2,c,9.00,9.00,", "2,s,,," + NOT_COUNTED,  # a stall of the prober's own: not counted, so skipped
            "3,s,4.00,4.00,"]  # its canary side never sent: no pair
    (tmp_path / "healthy.csv.gz").write_bytes(gzip.compress("\n".join(rows).encode()))
    pairs = load("healthy", tmp_path)
    assert pairs == [Pair(Request(5.0, 4.0), Request(7.0, 5.0)), Pair(Request(None, None, "http_5xx"), Request(3.0, 3.0))]
    traffic = RecordedTraffic(pairs, seed=1)
    seen = set()
    for _ in range(20):
        stall = traffic.stall()
        seen.add((stall, traffic.request(True, stall, 0.0), traffic.request(False, stall, 0.0)))
    assert seen <= {(1.0, 5.0, 7.0), (0.0, None, 3.0)} and len(seen) == 2


def test_recording_drives_the_prober_against_a_stable_and_a_canary_on_the_embedded_stack(tmp_path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "stream_recording.py"), "--record", "--healthy-s", "2",
                           "--fault-s", "1", "--rows", "1000", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.csv.gz" for n in
                                                               [*HEALTHY_STREAMS.values(), *(f for f, _ in FAULTS.values())])
    healthy = load("healthy", tmp_path)
    assert len(healthy) >= RATE  # 2 s at 15/s: most of 30 pairs, the last few maybe cut at the end
    assert all(p.canary.ms is not None and p.stable.ms is not None for p in healthy)
    errors = gzip.decompress((tmp_path / "errors-20pct.csv.gz").read_bytes()).decode().splitlines()
    assert errors[0] == "i,side,ms,answer_ms,error" and all(line.split(",")[1] in "cs" for line in errors[1:])


def test_a_faults_hold_starts_where_its_recording_starts_and_goes_through_it_whole() -> None:
    pairs = [Pair(Request(float(i), float(i)), Request(1.0, 1.0)) for i in range(400)]  # longer than a block
    traffic = RecordedTraffic(pairs, seed=3, from_onset=True)
    replayed = []
    for _ in range(len(pairs)):
        stall = traffic.stall()
        replayed.append(traffic.request(True, stall, 0.0))
    assert replayed == [float(i) for i in range(400)]


def test_a_late_faults_hold_is_healthy_pairs_until_its_onset_then_its_recording_from_the_start() -> None:
    healthy = [Pair(Request(1.0, 1.0), Request(1.0, 1.0))] * 300
    fault = [Pair(Request(100.0 + i, 100.0 + i), Request(1.0, 1.0)) for i in range(50)]
    traffic = RecordedTraffic(fault, seed=5, from_onset=True, before=healthy, onset_s=10.0)
    replayed = []
    for i in range(int(20 * RATE)):
        stall = traffic.stall()
        replayed.append(traffic.request(True, stall, i / RATE))
    onset = int(10 * RATE)
    assert set(replayed[:onset + 1]) == {1.0}  # the side is chosen by the due time before: one instant late at most
    assert replayed[onset + 1:onset + 51] == [100.0 + i for i in range(50)]
