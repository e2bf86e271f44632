"""OpenTelemetry across the bus (issue 17): one short run on the five service processes is one trace, read back
from a real OTLP/HTTP receiver (tests/otlp_receiver.py), even when its coordinator is killed and another takes the
run over; with tracing off nothing is exported and no header added.

Spans are read after the services stopped: a graceful stop exports what each process still buffers, so the test
waits on no exporter's schedule."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from golive.shared.tracing import run_ids
from tests.builders import skeleton_plan
from tests.e2e.run_outcome import wire_headers
from tests.harness import read_until, run_cli, start_run
from tests.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.e2e

PRODUCER, CONSUMER = 4, 5  # opentelemetry.proto's Span.SpanKind
SERVICES = {"coordinator", "migrator", "prober", "traffic", "notifier"}


@pytest.fixture
def otlp():
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def tracing_exporter() -> str:
    return "otlp"


@pytest.fixture
def process_env(process_env, otlp, tracing_exporter) -> dict[str, str]:
    """The services' environment, pointed at the receiver; tracing on unless ``tracing_exporter`` says none."""
    env = {**process_env, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint}
    if tracing_exporter != "none":
        env["GOLIVE_OTEL_EXPORTER"] = tracing_exporter
    return env


def run_skeleton(run_id: str, env: dict[str, str], tmp_path, webhook) -> None:
    result = run_cli("run", str(skeleton_plan(tmp_path)), "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old",
                     "--run-id", run_id, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    webhook.wait_for(lambda r: any("SUCCESS" in m["text"] for m in r))  # the notifier's last work is done


def test_one_run_is_one_trace_across_the_five_services_and_a_coordinator_that_takes_it_over(
        services, settings, process_env, otlp, tmp_path):
    """The first coordinator is killed (-9) mid-run: the one started after it takes the run over and goes on in the
    same trace, and exports its root when the run ends."""
    run = start_run(skeleton_plan(tmp_path), "run-traced", process_env, "--json", "--deploy-id", "dpl_new",
                    "--previous-deploy-id", "dpl_old")
    try:
        read_until(run, lambda e: e["type"] == "golive.coordinator.phase_started.v1"
                   and e["data"]["step"] == "stage1:hold")
        first = services.procs["coordinator"]
        first.send_signal(signal.SIGKILL)  # its spans still buffered are lost with it; the run goes on
        first.wait(10)
        second = services.start_one("coordinator", "-2")
        _out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    services.stop()  # every live service exports what it still buffers

    trace_number, root_number = run_ids("run-traced")
    trace_id, root_id = f"{trace_number:032x}", f"{root_number:016x}"
    spans = [s for s in otlp.spans if s.attributes.get("golive.run_id") == "run-traced"]
    print("spans of the run by service:", dict(sorted(Counter(s.service for s in spans).items())))
    assert {s.trace_id for s in spans} == {trace_id}, "every span of the run is in the run's one trace"
    assert {s.service for s in spans} == {f"golive-{name}" for name in SERVICES}
    by_id = {s.span_id: s for s in spans}
    assert len(by_id) == len(spans), "no span id exported twice"

    # the root: the run, exported by the coordinator that ended it, the one that took the run over
    roots = [s for s in spans if not s.parent_span_id]
    assert [(r.name, r.span_id, r.service, r.attributes["golive.outcome"]) for r in roots] == [
        ("golive run", root_id, "golive-coordinator", "succeeded")]
    assert roots[0].instance.endswith(f"-{second.pid}")

    # every command a coordinator sent: a child of the root, and its handling a child of that, in the service
    sends = [s for s in spans if s.name.startswith("send ")]
    assert all(s.kind == PRODUCER and s.parent_span_id == root_id and s.service == "golive-coordinator"
               for s in sends), sends
    assert any(s.instance.endswith(f"-{second.pid}") for s in sends), "the second coordinator's commands"
    handled = {s.parent_span_id: s for s in spans if s.name.startswith("handle golive.cmd.")}
    for send in sends:
        command = send.name.removeprefix("send ")
        handler = handled.get(send.span_id)
        assert handler is not None, f"no handling of {send.name}"
        assert handler.kind == CONSUMER and handler.name == f"handle {command}", handler
        assert handler.service == f"golive-{command.split('.')[2]}", handler  # golive.cmd.<service>.<action>
    assert {s.service for s in handled.values()} >= {"golive-prober", "golive-traffic"}
    # the handling of every command is a child of its send, whichever coordinator sent it (the killed one's sends
    # may be lost with it, unexported), except a start: the CLI sends no trace context, so it hangs off the root
    commands = [s for s in spans if s.name.startswith("handle golive.cmd.")]
    assert {s.service for s in commands} >= {"golive-migrator", "golive-prober", "golive-traffic"}
    assert all((s.parent_span_id == root_id) == (s.name == "handle golive.cmd.coordinator.start_run.v1")
               for s in commands)

    # events: handled as children of the root, linked back to the span that published them
    on_events = [s for s in spans if s.name.startswith("handle ") and s not in commands]
    assert {(s.service, s.attributes["messaging.consumer.group.name"]) for s in on_events} == {
        ("golive-coordinator", "coordinator-events"), ("golive-coordinator", "coordinator-watch"),
        ("golive-notifier", "notifier-events")}
    assert all(s.kind == CONSUMER and s.parent_span_id == root_id for s in on_events)
    links = [link for s in on_events for link in s.links]
    assert links and all(link[0] == trace_id for link in links)
    # events the services published while handling a command are linked to that handling, in the notifier too
    handling = {s.span_id for s in commands if s.service in ("golive-migrator", "golive-prober", "golive-traffic")}
    assert {by_id[link[1]].service for s in on_events if s.service == "golive-notifier" for link in s.links
            if link[1] in handling} == {"golive-migrator", "golive-prober", "golive-traffic"}

    # on the wire: every event of the run carries a traceparent of the run's trace
    for event_id, headers in wire_headers(settings, "run-traced"):
        parents = [value for name, value in headers if name == "traceparent"]
        assert len(parents) == 1 and parents[0].split("-")[1] == trace_id, (event_id, headers)


@pytest.mark.parametrize("tracing_exporter", ["none"])
def test_tracing_off_exports_nothing_and_adds_no_header(services, settings, process_env, otlp, webhook, tmp_path):
    run_skeleton("run-untraced", process_env, tmp_path, webhook)
    services.stop()  # a service that traced would have exported its spans by now

    assert otlp.requests == 0 and otlp.spans == []
    for event_id, headers in wire_headers(settings, "run-untraced"):
        assert not [name for name, _ in headers if name.lower() in ("traceparent", "tracestate")], (event_id, headers)
