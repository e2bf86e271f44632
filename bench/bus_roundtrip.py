"""bus_roundtrip: latency of one command round trip through golive's bus, against raw nats-py.

What is measured, on an embedded nats-server started by this script (JetStream, file storage, loopback):
one client sends a small JSON command to a work-queue stream (JetStream publish with PubAck and a
Nats-Msg-Id header), a durable pull consumer (batch 1) fetches it, a handler publishes a result to a
limits stream (with PubAck) and acks the command, and the client waits until it sees the result on a
plain subscription. Round trips run one after another; latency = from building the command to seeing
its result.

- reference: the same round trip written directly with nats-py (json in, json out).
- golive: golive.shared.bus.Bus with a trivial echo handler (envelopes, validation, metrics middleware,
  golive's ack contract), started through the FastStream app that ``Bus.app`` builds.

Both sides run in this process, on the same server, after a warm-up that is not counted, and take turns
in blocks of 100 round trips so that a change in machine load affects both alike. Printed:
p50/p90/p99/max and throughput per side, the ratio golive p50 / reference p50, peak RSS, and a last
line ``bus_roundtrip: ratio R (target T): met|missed``; the exit code is 1 when the target is missed.

Run: ``python bench/bus_roundtrip.py [--n 2000] [--warmup 100] [--target 3.0]``
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import nats
from hdrh.histogram import HdrHistogram
from nats.js.api import ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from bench.trials import trials_parser  # noqa: E402
from golive.shared.bus import Bus, Work  # noqa: E402
from golive.shared.envelope import Message, message_type, new_envelope  # noqa: E402
from golive.shared.settings import Settings  # noqa: E402
from golive.shared.telemetry import ServiceMetrics, configure_logging  # noqa: E402
from golive.stack.nats_server import EmbeddedNats  # noqa: E402

NAME = "bus_roundtrip"
FETCH_TIMEOUT_S = 2.0  # as golive's PullSub
RESULT_TIMEOUT_S = 10.0
BLOCK = 100  # round trips per turn


@message_type("golive.cmd.bench.echo.v1")
class Echo(Message):
    n: int
    text: str


@message_type("golive.bench.echoed.v1")
class Echoed(Message):
    n: int


RoundTrip = Callable[[int], Awaitable[None]]


async def wait_for_result(sub, msg_id: str) -> None:
    """Wait until the result whose Nats-Msg-Id is ``msg_id`` is seen on ``sub``."""
    while True:
        msg = await sub.next_msg(timeout=RESULT_TIMEOUT_S)
        if (msg.headers or {}).get("Nats-Msg-Id") == msg_id:
            return


@asynccontextmanager
async def reference(url: str) -> AsyncIterator[RoundTrip]:
    """The round trip in plain nats-py: a worker task with its own connection, and a client."""
    root = "ref" + secrets.token_hex(4)
    cmd_stream, res_stream = f"{root.upper()}_CMD", f"{root.upper()}_RES"
    cmd_subject, res_subject = f"{root}.cmd.echo", f"{root}.res.echoed"
    worker_nc, client_nc = await nats.connect(url), await nats.connect(url)
    worker = None
    try:
        js = worker_nc.jetstream()
        await js.add_stream(StreamConfig(name=cmd_stream, subjects=[f"{root}.cmd.>"], retention=RetentionPolicy.WORK_QUEUE,
                                         storage=StorageType.FILE, duplicate_window=120.0))
        await js.add_stream(StreamConfig(name=res_stream, subjects=[f"{root}.res.>"], retention=RetentionPolicy.LIMITS,
                                         storage=StorageType.FILE, duplicate_window=120.0))
        pull = await js.pull_subscribe(f"{root}.cmd.>", durable="worker", stream=cmd_stream,
                                       config=ConsumerConfig(ack_wait=30.0))

        async def work() -> None:
            while True:
                try:
                    msgs = await pull.fetch(1, timeout=FETCH_TIMEOUT_S)
                except nats.errors.TimeoutError:
                    continue
                except nats.errors.ConnectionClosedError:
                    return
                for msg in msgs:
                    command = json.loads(msg.data)
                    result_id = f"{command['id']}/echoed"
                    result = json.dumps({"id": result_id, "n": command["n"]}).encode()
                    await js.publish(res_subject, result, stream=res_stream, headers={"Nats-Msg-Id": result_id})
                    await msg.ack()

        worker = asyncio.create_task(work())
        results = await client_nc.subscribe(res_subject)
        client_js = client_nc.jetstream()

        async def round_trip(i: int) -> None:
            msg_id = f"{root}-{i}"
            body = json.dumps({"id": msg_id, "n": i, "text": "hello"}).encode()
            await client_js.publish(cmd_subject, body, stream=cmd_stream, headers={"Nats-Msg-Id": msg_id})
            await wait_for_result(results, f"{msg_id}/echoed")

        yield round_trip
    finally:
        await client_nc.drain()
        await worker_nc.close()  # ends the worker's fetch with ConnectionClosedError
        if worker is not None:
            await worker


@asynccontextmanager
async def golive(url: str) -> AsyncIterator[RoundTrip]:
    """The round trip through golive.shared.bus.Bus with an echo handler; the client is plain nats-py."""
    settings = Settings(nats_url=url, subject_root="bench" + secrets.token_hex(4))
    subjects = settings.subjects
    log = configure_logging("bench", "WARNING")
    bus = Bus(settings, "bench", ServiceMetrics("bench"), log, max_workers=1)

    async def echo(command: Echo, work: Work) -> Echoed:
        return Echoed(n=command.n)

    bus.on_command(Echo, echo)
    bus.start_consuming_commands()
    app = bus.app("bench")
    await app.start()  # on_startup (ensure_streams), then broker.start()
    # FastStream's access logger (created at start, level INFO, on stdout) would print a line at shutdown.
    logging.getLogger("faststream.access.nats").setLevel(logging.WARNING)
    client = await nats.connect(url)
    try:
        run_id = "run" + secrets.token_hex(4)
        cmd_subject = subjects.command("bench", "echo")
        results = await client.subscribe(subjects.events_of_run(run_id))
        client_js = client.jetstream()

        async def round_trip(i: int) -> None:
            envelope = new_envelope(Echo(n=i, text="hello"), id=f"{run_id}-{i}", source="/golive/bench-client",
                                    runid=run_id, subject=cmd_subject)
            await client_js.publish(cmd_subject, envelope.to_json(), stream=subjects.command_stream,
                                    headers={"Nats-Msg-Id": envelope.id})
            await wait_for_result(results, f"{envelope.id}/{Echoed.short_name()}")

        yield round_trip
    finally:
        await client.drain()
        await app.stop()  # on_shutdown, then broker.stop()


async def measure(url: str, n: int, warmup: int) -> dict[str, tuple[HdrHistogram, float]]:
    """Per side: latencies in microseconds of ``n`` round trips, and the seconds they took. The sides take
    turns in blocks of BLOCK round trips, so a change in machine load affects both alike."""
    async with reference(url) as ref, golive(url) as gl:
        sides = {"reference (nats-py)": ref, "golive (Bus)": gl}
        for round_trip in sides.values():
            for i in range(warmup):
                await round_trip(-1 - i)
        figures = {name: (HdrHistogram(1, 60_000_000, 3), 0.0) for name in sides}
        for first in range(0, n, BLOCK):
            for name, round_trip in sides.items():
                histogram, elapsed = figures[name]
                block_started = time.perf_counter()
                for i in range(first, min(n, first + BLOCK)):
                    t0 = time.perf_counter()
                    await round_trip(i)
                    histogram.record_value(max(1, round((time.perf_counter() - t0) * 1e6)))
                figures[name] = histogram, elapsed + time.perf_counter() - block_started
        return figures


def summary(label: str, histogram: HdrHistogram, elapsed_s: float) -> str:
    ms = {p: histogram.get_value_at_percentile(p) / 1000 for p in (50, 90, 99)}
    return (f"{label:<20} p50 {ms[50]:.3f} ms  p90 {ms[90]:.3f} ms  p99 {ms[99]:.3f} ms  "
            f"max {histogram.get_max_value() / 1000:.3f} ms  throughput {histogram.get_total_count() / elapsed_s:,.0f}/s")


def main(argv: list[str] | None = None) -> int:
    parser = trials_parser(__doc__, "round trips per side", n=2000, warmup=100)
    parser.add_argument("--target", type=float, default=3.0, help="highest acceptable golive/reference p50 ratio")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-nats-") as tmp:
        with EmbeddedNats(Path(tmp)) as server:
            figures = asyncio.run(measure(server.url, args.n, args.warmup))

    print(f"{NAME}: {args.n} sequential round trips per side after {args.warmup} warm-up, "
          f"sides alternating every {BLOCK}, embedded nats-server")
    for name, (histogram, elapsed_s) in figures.items():
        print(summary(name, histogram, elapsed_s))
    (ref, _), (gl, _) = figures.values()
    ratio = gl.get_value_at_percentile(50) / ref.get_value_at_percentile(50)
    print(f"ratio golive p50 / reference p50 = {ratio:.2f}")
    own_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    server_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: bench process {own_mib:.0f} MiB, nats-server {server_mib:.0f} MiB")
    met = round(ratio, 2) <= args.target  # judged on the figure printed
    print(f"{NAME}: ratio {ratio:.2f} (target {args.target}): {'met' if met else 'missed'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
