"""OpenTelemetry across the bus (issue 17): one short run on the five service processes is one trace, read back
from a real OTLP/HTTP receiver (tests/otlp_receiver.py); with tracing off nothing is exported and no header added.

Spans are read after the services stopped: a graceful stop exports what each process still buffers, so the test
waits on no exporter's schedule."""

from __future__ import annotations

from collections import Counter

import pytest

from shared.tracing import run_ids
from tests.builders import skeleton_plan
from tests.e2e.run_outcome import wire_headers
from tests.harness import run_cli
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


def test_one_run_is_one_trace_across_the_five_services(services, settings, process_env, otlp, webhook, tmp_path):
    run_skeleton("run-traced", process_env, tmp_path, webhook)
    services.stop()

    trace_number, root_number = run_ids("run-traced")
    trace_id, root_id = f"{trace_number:032x}", f"{root_number:016x}"
    spans = [s for s in otlp.spans if s.attributes.get("golive.run_id") == "run-traced"]
    assert {s.trace_id for s in spans} == {trace_id}, "every span of the run is in the run's one trace"
    assert {s.service for s in spans} == {f"golive-{name}" for name in SERVICES}
    by_id = {s.span_id: s for s in spans}
    print("spans of the run by service:", dict(sorted(Counter(s.service for s in spans).items())))
    print("\n".join(sorted({f"  {s.service}: {s.name}" for s in spans})))
    assert len(by_id) == len(spans), "no span id exported twice"

    # the root: the run, exported by the coordinator when the run ended
    roots = [s for s in spans if not s.parent_span_id]
    assert [(r.name, r.span_id, r.service, r.attributes["golive.outcome"]) for r in roots] == [
        ("golive run", root_id, "golive-coordinator", "succeeded")]

    # every command the coordinator sent: a child of the root, and its handling a child of that, in the service
    sends = [s for s in spans if s.name.startswith("send ")]
    assert sends and all(s.kind == PRODUCER and s.parent_span_id == root_id and s.service == "golive-coordinator"
                         for s in sends), sends
    handled = {s.parent_span_id: s for s in spans if s.name.startswith("handle golive.cmd.")}
    for send in sends:
        command = send.name.removeprefix("send ")
        handler = handled.get(send.span_id)
        assert handler is not None, f"no handling of {send.name}"
        assert handler.kind == CONSUMER and handler.name == f"handle {command}", handler
        assert handler.service == f"golive-{command.split('.')[2]}", handler  # golive.cmd.<service>.<action>
    assert {s.service for s in handled.values()} >= {"golive-migrator", "golive-prober", "golive-traffic"}
    # the start came from the CLI, which sends no trace context: its handling hangs off the root
    start = [s for s in spans if s.name == "handle golive.cmd.coordinator.start_run.v1"]
    assert [s.parent_span_id for s in start] == [root_id]

    # events: handled as children of the root, linked back to the span that published them
    on_events = [s for s in spans if s.name.startswith("handle ") and not s.name.startswith("handle golive.cmd.")]
    assert {(s.service, s.attributes["messaging.consumer.group.name"]) for s in on_events} == {
        ("golive-coordinator", "coordinator-events"), ("golive-coordinator", "coordinator-watch"),
        ("golive-notifier", "notifier-events")}
    assert all(s.kind == CONSUMER and s.parent_span_id == root_id for s in on_events)
    linked = [s for s in on_events if s.links]
    assert linked and all(link[0] == trace_id and link[1] in by_id for s in linked for link in s.links)
    # an event a migrator's handling published is linked to that handling, in the notifier too
    migrator_handling = {s.span_id for s in spans if s.service == "golive-migrator" and s.kind == CONSUMER}
    assert any(link[1] in migrator_handling for s in linked if s.service == "golive-notifier" for link in s.links)

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
