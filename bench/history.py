"""history: `golive status` of every run and `golive report --weekly`, from the run history, at 10, 100 and 1,000 runs.

What is measured, on an embedded nats-server started by this script (JetStream, file storage, loopback): N recorded
runbook runs, made from the three runs of tests/recorded/events-v1.jsonl (succeeded, rolled back, succeeded and
watched) re-id'd and spread over the last six days, published into the event stream, each run's summary and watch
record written into the run history as the coordinator writes them (services/coordinator/history.py). Then, each in
a fresh Python process (so that the time includes starting the command, and the peak memory is the command's own:
``ru_maxrss``):

- golive: `golive status` (every run) and `golive report --weekly`, as the CLI runs them (from the run history);
- reference: the same two as they were before the run history: `status` folded every coordinator event of every run
  through the saga, the weekly report read every event of the stream.

The recorded runs are small (23 to 39 events; a runbook run leaves about 1,830): ``--pad K`` adds K prober windows
to each run to come closer (the reference grows with it, golive does not). Printed: a table of seconds and MB per
size and side, and a last line ``history: status S s M MB, weekly S s M MB at N runs (reference ratio ...)
(target < 2 s and < 200 MB): met|missed`` for the largest size; the exit code is 1 when the target is missed.

Run: ``python bench/history.py [--sizes 10,100,1000] [--pad 0]``
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # a measured child process counts its imports too: a user waits for them

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

NAME = "history"
RECORDED = REPO / "tests" / "recorded" / "events-v1.jsonl"
RECORDED_ROOT = "rec"
ROOT = "bench"
TARGET_S, TARGET_MB = 2.0, 200.0
PUBLISH_BATCH = 500  # publishes in flight at once while generating the runs
MODES = ("status", "weekly", "old-status", "old-weekly")


# --- generating the runs --------------------------------------------------------------------------------------


def templates() -> dict[str, list[dict]]:
    """The recorded runs, each its messages in stream order."""
    runs: dict[str, list[dict]] = {}
    for line in RECORDED.read_text().splitlines():
        message = json.loads(line)
        runs.setdefault(message["body"]["runid"], []).append(message)
    return runs


def re_id(messages: list[dict], old_id: str, new_id: str, shift: timedelta, pad: int) -> list[dict]:
    """A template run as run ``new_id``: every id, subject and header naming the old run renamed, every event's time
    moved by ``shift``; ``pad`` more prober windows (copies of the run's first one, each its own id)."""
    out = []
    for message in messages:
        text = json.dumps(message).replace(f".{old_id}.", f".{new_id}.").replace(old_id, new_id)
        text = text.replace(f"{RECORDED_ROOT}.evt.", f"{ROOT}.evt.").replace(f"{RECORDED_ROOT.upper()}_EVT",
                                                                              f"{ROOT.upper()}_EVT")
        moved = json.loads(text)
        moved["body"]["time"] = (datetime.fromisoformat(moved["body"]["time"]) + shift).isoformat()
        out.append(moved)
    window = next((m for m in out if m["body"]["type"].endswith(".probe_window.v1")), None)
    for n in range(pad if window else 0):
        copy = json.loads(json.dumps(window))
        copy["body"]["id"] = f"{copy['body']['id']}/pad{n}"
        copy["headers"] = {**copy["headers"], "Nats-Msg-Id": copy["body"]["id"]}
        out.insert(len(out) // 2, copy)
    return out


async def record_runs(url: str, n: int, first: int, pad: int, now: datetime) -> None:
    """Runs ``first`` .. ``n - 1`` into the event stream, and their summaries into the run history."""
    import nats

    from golive.services.coordinator.history import RunHistory, watch_of
    from golive.shared.bus import ensure_streams
    from golive.shared.envelope import parse_envelope
    from golive.shared.run_summary import summary_of
    from golive.shared.settings import Settings
    from golive.shared.subjects import Subjects

    settings = Settings(nats_url=url, subject_root=ROOT)
    await ensure_streams(settings)
    runs = templates()
    names = sorted(runs)
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        history = await RunHistory.open(js, Subjects(ROOT))
        pending = []
        for i in range(first, n):
            old_id = names[i % len(names)]
            start = datetime.fromisoformat(runs[old_id][0]["body"]["time"])
            shift = (now - timedelta(days=6) + timedelta(days=6) * i / max(n, 1)) - start
            messages = re_id(runs[old_id], old_id, f"run-bench-{i:05d}", shift, pad)
            for m in messages:
                pending.append(js.publish(m["subject"], json.dumps(m["body"], separators=(",", ":")).encode(),
                                          headers=m["headers"]))
                if len(pending) >= PUBLISH_BATCH:
                    await asyncio.gather(*pending)
                    pending = []
            # what the coordinator writes: the run's summary from its whole history, the watch's record
            events = [parse_envelope(json.dumps(m["body"]).encode()) for m in messages]
            summary = summary_of(events)
            assert summary is not None
            await history.put_run(summary)
            if (watch := watch_of(events)) is not None:
                await history.put_watch(watch)
        await asyncio.gather(*pending)
    finally:
        await nc.close()


# --- one measurement, in a process of its own ---------------------------------------------------------------------


def measure(mode: str, out_dir: str) -> None:
    """Run ``mode`` once in this fresh process; print seconds since it started and its peak memory as JSON."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()) as printed:
        if mode in ("status", "weekly"):
            from golive.cli.app import app

            args = ["status"] if mode == "status" else ["report", "--weekly", "--out", out_dir]
            app(args, standalone_mode=False)
        else:
            asyncio.run(old_status() if mode == "old-status" else old_weekly(out_dir))
    lines = len(printed.getvalue().splitlines())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": time.monotonic() - STARTED, "cpu": usage.ru_utime + usage.ru_stime,
                      "mb": usage.ru_maxrss / 1024, "lines": lines}))


async def old_status() -> None:
    """`golive status` before the run history: every coordinator event of every run, folded through the saga."""
    from contextlib import aclosing

    from golive.client import connect
    from golive.services.coordinator.saga import decide
    from golive.shared.event_log import read_events
    from golive.shared.settings import Settings

    settings = Settings()
    nc = await connect(settings)
    try:
        runs: dict = {}
        async with aclosing(read_events(nc.jetstream(), settings.subjects.events_from("coordinator"))) as feed:
            async for _seq, envelope in feed:
                state, events = runs.get(envelope.runid, (None, []))
                state, _ = decide(state, envelope)
                runs[envelope.runid] = (state, [*events, envelope])
    finally:
        await nc.close()
    for state, _events in runs.values():
        print(state.run_id if state else "-")


async def old_weekly(out_dir: str) -> None:
    """`golive report --weekly` before the run history: every event of the stream, then the same report."""
    from contextlib import aclosing

    from golive.client import connect
    from golive.services.coordinator.weekly import weekly_report, write_weekly
    from golive.shared.event_log import read_events
    from golive.shared.run_summary import summaries_of
    from golive.shared.settings import Settings

    settings = Settings()
    nc = await connect(settings)
    try:
        async with aclosing(read_events(nc.jetstream(), settings.subjects.all_events)) as feed:
            events = [envelope async for _seq, envelope in feed]
    finally:
        await nc.close()
    until = datetime.now(UTC)
    for path in write_weekly(weekly_report(summaries_of(events), until - timedelta(days=7), until), Path(out_dir)):
        print(path)


def measured(mode: str, url: str, out_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLIVE_")}
    env.update({"GOLIVE_NATS_URL": url, "GOLIVE_SUBJECT_ROOT": ROOT, "GOLIVE_STATE_DIR": str(out_dir / "state"),
                "GOLIVE_ARTIFACTS_DIR": str(out_dir / "artifacts")})
    done = subprocess.run([sys.executable, __file__, "--measure", mode, "--out", str(out_dir / mode)],
                          env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} failed: {done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the benchmark ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="numbers of runs, ascending (default 10,100,1000)")
    parser.add_argument("--pad", type=int, default=0, help="prober windows added to each run (default 0)")
    parser.add_argument("--measure", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.out)
        return 0
    sizes = sorted(int(s) for s in args.sizes.split(","))
    from golive.stack.nats_server import EmbeddedNats

    now = datetime.now(UTC)
    rows: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp, EmbeddedNats(Path(tmp) / "nats") as server:
        recorded = 0
        for size in sizes:
            asyncio.run(record_runs(server.url, size, recorded, args.pad, now))
            recorded = size
            rows[size] = {mode: measured(mode, server.url, Path(tmp) / f"{size}") for mode in MODES}
            print(f"{size:>6} runs recorded and measured ({rows[size]['status']['lines'] - 1} listed; load average "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
    print()
    print("seconds: wall (CPU of the command's process); MB: its peak RSS; reference: the full-stream read of old")
    print("| runs | status | weekly | reference status | reference weekly |")
    print("|---|---|---|---|---|")
    for size, r in rows.items():
        print(f"| {size} | " + " | ".join(f"{r[m]['seconds']:.2f} s ({r[m]['cpu']:.2f}) {r[m]['mb']:.0f} MB"
                                          for m in MODES) + " |")
    largest = rows[sizes[-1]]
    status, weekly = largest["status"], largest["weekly"]
    met = all(m["seconds"] < TARGET_S and m["mb"] < TARGET_MB for m in (status, weekly))
    print(f"{NAME}: status {status['seconds']:.2f} s {status['mb']:.0f} MB, weekly {weekly['seconds']:.2f} s "
          f"{weekly['mb']:.0f} MB at {sizes[-1]} runs (reference ratio: status "
          f"{status['seconds'] / largest['old-status']['seconds']:.2f}, weekly "
          f"{weekly['seconds'] / largest['old-weekly']['seconds']:.2f}) (target < {TARGET_S:g} s and < "
          f"{TARGET_MB:g} MB): {'met' if met else 'missed'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
