"""Every command goes on the wire the same way, whoever sends it: the operator's CLI (`golive run`, in its own
process) and a service's bus publish it with the same NATS headers (the body's content type, and the envelope id
as Nats-Msg-Id, so JetStream drops a re-send). Seen by a plain subscriber on a real nats-server."""

from __future__ import annotations

import asyncio

import nats
from nats.aio.msg import Msg

from golive.shared.bus import Bus
from golive.shared.commands import ProviderSpec, ShiftTraffic
from golive.shared.envelope import parse_envelope
from golive.shared.telemetry import ServiceMetrics, configure_logging
from golive.stack.service_processes import service_env
from tests.builders import skeleton_plan
from tests.harness import start_run


async def next_command(sub, timeout_s: float = 30.0) -> Msg:
    msg = await sub.next_msg(timeout=timeout_s)
    assert msg.headers, f"a command on {msg.subject} came without headers"
    return msg


async def test_the_cli_and_the_services_send_commands_with_the_same_headers(settings, tmp_path):
    nc = await nats.connect(settings.resolved_nats_url())
    sub = await nc.subscribe(settings.subjects.all_commands)  # JetStream publishes reach core subscribers too
    env = service_env(settings.resolved_nats_url(), settings.state_dir,
                      {"GOLIVE_SUBJECT_ROOT": settings.subject_root, "GOLIVE_START_TIMEOUT_S": "60"})
    cli = await asyncio.to_thread(start_run, skeleton_plan(tmp_path), "run-headers", env)
    try:
        from_cli = await next_command(sub)  # its start: no coordinator runs here to answer it
    finally:
        cli.kill()
        await asyncio.to_thread(cli.communicate)

    bus = Bus(settings, "coordinator", ServiceMetrics("coordinator"), configure_logging("coordinator", "WARNING"))
    await bus.start()
    try:
        shift = ShiftTraffic(provider=ProviderSpec(type="dry-run"), canary="dpl_new", weight=10)
        batched = bus.command_envelope(shift, run_id="run-headers", command_id="run-headers/shift/1")
        await bus.publish_all([(batched, settings.subjects.command_stream)])  # a decision's outputs
        from_decision = await next_command(sub)
        single = bus.command_envelope(shift, run_id="run-headers", command_id="run-headers/shift/2")
        await bus.publish(single, single.subject or "", settings.subjects.command_stream)  # a re-sent command
        from_resend = await next_command(sub)
    finally:
        await bus.stop()
        await nc.close()

    assert parse_envelope(from_cli.data).source == "/golive/cli"
    assert from_cli.subject == settings.subjects.command("coordinator", "start_run")
    for msg in (from_cli, from_decision, from_resend):
        assert msg.headers is not None
        assert msg.headers["Nats-Msg-Id"] == parse_envelope(msg.data).id
    assert from_cli.headers == {**from_decision.headers, "Nats-Msg-Id": from_cli.headers["Nats-Msg-Id"]}
    assert from_resend.headers == {**from_decision.headers, "Nats-Msg-Id": "run-headers/shift/2"}
    assert from_cli.headers["Content-Type"] == "application/cloudevents+json"
