"""Recorded request streams for bench/detection.py: the runbook's stage-1 health checks measured on the embedded stack,
saved, and replayed through the judges in place of simulated ones.

Recording (``--record``): the embedded PostgreSQL seeded as the demo seeds it (golive/demo/data.py), a stable and a
canary demo app (golive/demo/app.py), and the prober's own load code (services/prober/load.py's open loop, the http
target, LoopLag, as services/prober/run.py drives a hold) probing ``/api/health`` on both at the runbook's stage-1
rate, 15 requests/s each with 4 workers, one clock. Each request is saved as it was counted: its index in the schedule
(due at index / rate), the deployment, the latency from its due time (what the windows count) and from its send (what
the sequential judge is handed: the prober's own lateness is no part of a target's answer), the error class.
Streams: ``healthy`` (both apps ok), ``busy`` (the same with one core kept busy by ``python3 -c 'while 1: pass'``),
and the canary given each fault of detection.py's cases through ``POST /_control`` (error_rate, add_ms).

Replay (``RecordedTraffic``): the same methods as detection.py's simulated ``Traffic``, so its judges read either. A
hold is cut from a recording by block resampling: blocks of BLOCK_S seconds of request pairs, each from a random
start, one after another, a canary request and the stable one due with it always together. A fault's hold first
replays its recording whole from the start, where the fault set in: a canary too slow for the workers (+300 ms and
+600 ms with 4 workers cannot keep 15/s) falls further behind through its recording, so a random place in it is not
an onset. With one recording per fault its holds share that start: a case decided within it is one measurement. A pair is the due
instant: the window counts each side's latency from its due time, and the sequential judge is handed that latency
less the pair's lateness (the smaller of the two sides' own, measured). A pair where the prober counted either side
as its own stall (LoopLag) is skipped, as the prober leaves such requests out. production_api (the alias at 20/s,
10% on the canary) is drawn from the same pairs: one side of the next pair, the canary's one time in ten.

Run: ``python bench/stream_recording.py --record [--healthy-s 600] [--fault-s 90]`` (about 30 minutes), which
rewrites bench/recorded/ (its README says what is there).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from golive.services.prober.load import Recorder, run_load  # noqa: E402
from golive.services.prober.loop_lag import LoopLag  # noqa: E402
from golive.services.prober.targets import make_target  # noqa: E402
from golive.shared.commands import HttpProbeSpec  # noqa: E402

RECORDED = Path(__file__).resolve().parent / "recorded"
RATE, CONCURRENCY, WARMUP_S = 15.0, 4, 2.0  # the runbook's stage 1: app_health open loop at 15/s, 4 workers
BLOCK_S = 10.0  # a prober's stall lasts well under a second: blocks this long keep what follows one together
NOT_COUNTED = "not_counted"  # the prober's own stall (LoopLag): left out of its numbers
HEALTHY_STREAMS = {False: "healthy", True: "busy"}
# detection.py's fault cases by name: the recording of each and the canary's control that made it
FAULTS = {"2% errors": ("errors-2pct", {"mode": "errors", "error_rate": 0.02}),
          "5% errors": ("errors-5pct", {"mode": "errors", "error_rate": 0.05}),
          "20% errors": ("errors-20pct", {"mode": "errors", "error_rate": 0.20}),
          "+100 ms": ("latency-100ms", {"mode": "latency", "add_ms": 100}),
          "+300 ms": ("latency-300ms", {"mode": "latency", "add_ms": 300}),
          "+600 ms": ("latency-600ms", {"mode": "latency", "add_ms": 600})}
COLUMNS = ("i", "side", "ms", "answer_ms", "error")


@dataclass
class Request:
    """One counted request: latency from its due time and from its send in ms (None: failed), its error class."""

    ms: float | None
    answer_ms: float | None
    error: str = ""


@dataclass
class Pair:
    canary: Request
    stable: Request

    @property
    def counted(self) -> bool:
        return NOT_COUNTED not in (self.canary.error, self.stable.error)

    @property
    def lateness_ms(self) -> float:
        """The prober's own delay in sending this pair: the smaller side's (both were due at once, on one loop)."""
        late = [r.ms - r.answer_ms for r in (self.canary, self.stable) if r.ms is not None and r.answer_ms is not None]
        return max(0.0, min(late, default=0.0))


# --- recording ----------------------------------------------------------------------------------------------------

@dataclass
class TapedRecorder(Recorder):
    """The prober's Recorder, keeping every request it is told of as a row (the windows and totals go on as usual)."""

    side: str = ""
    rows: list[tuple] = field(default_factory=list)

    def ok(self, start: float, seconds: float, gauges: dict[str, float] | None, sent: float | None = None,
           late: bool = False) -> None:
        overloaded = self.total.overloaded
        super().ok(start, seconds, gauges, sent=sent, late=late)
        if start >= self.counted_from:
            answer = seconds - max(0.0, sent - start) if sent is not None else seconds
            error = NOT_COUNTED if self.total.overloaded > overloaded else ""
            self._row(start, f"{1000 * seconds:.2f}", f"{1000 * max(0.0, answer):.2f}", error)

    def error(self, start: float, error_class: str, gauges: dict[str, float] | None = None,
              deployment: str | None = None, late: bool = False) -> None:
        overloaded = self.total.overloaded
        super().error(start, error_class, gauges, deployment, late=late)
        if start >= self.counted_from:
            self._row(start, "", "", NOT_COUNTED if self.total.overloaded > overloaded else error_class)

    def _row(self, start: float, ms: str, answer_ms: str, error: str) -> None:
        self.rows.append((round((start - self.counted_from) * RATE), self.side, ms, answer_ms, error))


async def record_stream(canary_url: str, stable_url: str, seconds: float) -> list[tuple]:
    """``seconds`` of both deployments' /api/health probed as a stage-1 hold probes them: the rows, in due order."""
    clock = time.monotonic
    targets = {side: make_target(HttpProbeSpec(name="app_health", url=f"{url}/api/health", body_contains="ok"), {})
               for side, url in (("c", canary_url), ("s", stable_url))}
    for target in targets.values():
        await target.open(CONCURRENCY)
    loop_lag = LoopLag(clock)
    loop_lag.start()
    try:
        t0 = clock() + 0.01
        counted_from = t0 + WARMUP_S
        recorders = {side: TapedRecorder.starting(counted_from, reservoir_seed=i, loop_lag=loop_lag)
                     for i, side in enumerate(targets)}
        for side, recorder in recorders.items():
            recorder.side = side
        await asyncio.gather(*(run_load(targets[side], recorders[side], concurrency=CONCURRENCY, rate=RATE, t0=t0,
                                        end=counted_from + seconds, clock=clock) for side in targets))
    finally:
        loop_lag.stop()
        for target in targets.values():
            await target.close()
    return sorted((row for r in recorders.values() for row in r.rows), key=lambda row: (row[0], row[1]))


def save(name: str, rows: list[tuple], folder: Path = RECORDED) -> Path:
    path = folder / f"{name}.csv.gz"
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    # mtime 0: the same rows give the same bytes, so a re-recording shows in git only where it differs
    path.write_bytes(gzip.compress(text.getvalue().encode(), compresslevel=9, mtime=0))
    return path


def stream_names() -> list[str]:
    return [*HEALTHY_STREAMS.values(), *(name for name, _ in FAULTS.values())]


def record_all(healthy_s: float, fault_s: float, rows: int, folder: Path = RECORDED, only: list[str] | None = None) -> None:
    """Start the stack, record every stream (or those ``only`` names) into ``folder``, stop everything started here."""
    from golive.demo.app import DemoApp
    from golive.demo.data import seed_demo
    from golive.stack.postgres import EmbeddedPostgres

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="golive-recording-") as tmp, \
            EmbeddedPostgres(Path(tmp) / "postgres") as postgres:
        seed_demo(postgres.url, rows)
        with DemoApp("stable", postgres.url, Path(tmp) / "logs") as stable, \
                DemoApp("canary", postgres.url, Path(tmp) / "logs") as canary:
            streams: list[tuple[str, dict, float, bool]] = [("healthy", {"mode": "ok"}, healthy_s, False),
                                                             ("busy", {"mode": "ok"}, healthy_s, True)]
            streams += [(name, control, fault_s, False) for name, control in FAULTS.values()]
            for name, control, seconds, busy in streams:
                if only and name not in only:
                    continue
                amounts = {k: v for k, v in control.items() if k != "mode"}
                canary.set_mode(str(control["mode"]), **amounts)
                spinner = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if busy else None
                try:
                    taped = asyncio.run(record_stream(canary.url, stable.url, seconds))
                finally:
                    if spinner is not None:
                        spinner.kill()
                        spinner.wait()
                path = save(name, taped, folder)
                failed = sum(1 for row in taped if row[4])
                # the machine's load says how idle "healthy" was: other work on it is part of the recording
                load_1m = os.getloadavg()[0]
                print(f"{name}: {len(taped)} requests, {failed} failed or not counted, {path.stat().st_size:,} bytes, "
                      f"load average {load_1m:.1f} at the end", flush=True)
            canary.set_mode("ok")


# --- replay -------------------------------------------------------------------------------------------------------

def load(name: str, folder: Path = RECORDED) -> list[Pair]:
    """A recording's counted request pairs, in due order (an index missing a side, cut at the end, is dropped)."""
    sides: dict[int, dict[str, Request]] = {}
    with gzip.open(folder / f"{name}.csv.gz", "rt", newline="") as f:
        for row in csv.DictReader(f):
            request = Request(float(row["ms"]) if row["ms"] else None,
                              float(row["answer_ms"]) if row["answer_ms"] else None, row["error"])
            sides.setdefault(int(row["i"]), {})[row["side"]] = request
    pairs = [Pair(both["c"], both["s"]) for _, both in sorted(sides.items()) if len(both) == 2]
    return [pair for pair in pairs if pair.counted]


class Recordings:
    """The recordings of bench/recorded/, each loaded once."""

    def __init__(self, folder: Path = RECORDED) -> None:
        self.folder = folder
        self._loaded: dict[str, list[Pair]] = {}

    def pairs(self, fault_name: str, busy: bool) -> list[Pair]:
        name = FAULTS[fault_name][0] if fault_name in FAULTS else HEALTHY_STREAMS[busy]
        if name not in self._loaded:
            self._loaded[name] = load(name, self.folder)
        return self._loaded[name]

    def traffic(self, fault, seed: int, busy: bool) -> RecordedTraffic:
        """What detection.py's ``Traffic(fault, seed, busy)`` is, replayed from the recording of ``fault``: from the
        fault's onset (``fault.onset_s`` into the hold) its recording from the start, before it healthy blocks (the
        busy-core recording's when ``busy``): a late fault spliced after a healthy prefix."""
        if fault.name not in FAULTS:
            return RecordedTraffic(self.pairs(fault.name, busy), seed)
        return RecordedTraffic(self.pairs(fault.name, busy), seed, from_onset=True,
                               before=self.pairs("", busy) if fault.onset_s > 0 else None, onset_s=fault.onset_s)


class _Cursor:
    """A walk over recorded pairs: the recording whole from its start first (``whole``), then random blocks."""

    def __init__(self, pairs: list[Pair], whole: bool) -> None:
        self.pairs, self.block = pairs, max(1, min(len(pairs), int(BLOCK_S * RATE)))
        self.at, self.left = 0, len(pairs) if whole else 0

    def next(self, rng: random.Random) -> Pair:
        if self.left == 0:  # the next block, from a random start
            self.at, self.left = rng.randrange(len(self.pairs) - self.block + 1), self.block
        pair, self.at, self.left = self.pairs[self.at], self.at + 1, self.left - 1
        return pair


class RecordedTraffic:
    """detection.py's Traffic over a recording: ``stall()`` moves to the next due instant (a pair) and says how late
    the prober sent it; ``request`` is one side's latency from the due time in ms (None: failed). With ``before``,
    the pairs before ``onset_s`` come from that (healthy) recording: the side is chosen at ``stall()`` by the due
    time of the request before it, so a late fault starts at most one due instant late."""

    def __init__(self, pairs: list[Pair], seed: int, from_onset: bool = False, before: list[Pair] | None = None,
                 onset_s: float = 0.0) -> None:
        self.rng = random.Random(seed)
        self.after = _Cursor(pairs, whole=from_onset)
        self.before = _Cursor(before, whole=False) if before is not None else None
        self.onset_s, self.now = onset_s, 0.0
        self.pair = pairs[0]

    def stall(self) -> float:
        cursor = self.before if self.before is not None and self.now < self.onset_s else self.after
        self.pair = cursor.next(self.rng)
        return self.pair.lateness_ms

    def request(self, canary: bool, stall: float, at_s: float, noise: float = 0.0) -> float | None:
        """One side of the current pair, due ``at_s`` into the hold."""
        self.now = at_s
        # noise: production's background failures, modelled as detection.py models them (the demo app has none)
        if noise and self.rng.random() < noise:
            return None
        return (self.pair.canary if canary else self.pair.stable).ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--record", action="store_true", help="record every stream into bench/recorded/")
    parser.add_argument("--healthy-s", type=float, default=600.0, help="length of the healthy and busy-core streams")
    parser.add_argument("--fault-s", type=float, default=90.0, help="length of each fault's stream")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per runbook table, as the demo seeds them")
    parser.add_argument("--out", type=Path, default=RECORDED)
    parser.add_argument("--streams", nargs="+", choices=stream_names(), metavar="NAME",
                        help=f"record only these ({', '.join(stream_names())}); default all")
    args = parser.parse_args()
    if not args.record:
        parser.error("nothing to do: --record records the streams (bench/detection.py --recorded replays them)")
    record_all(args.healthy_s, args.fault_s, args.rows, args.out, args.streams)
    return 0


if __name__ == "__main__":
    sys.exit(main())
