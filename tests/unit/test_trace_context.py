"""shared/tracing.py with the SDK's in-memory exporter: the shape of a run's trace, the same trace id in every process
(a resumed run goes on in its trace), nothing at all when off, no secret in a span."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from golive.shared import tracing
from golive.shared.commands import AbortRun
from golive.shared.envelope import nats_headers, new_envelope
from golive.shared.events import AbortRequested
from tests.harness import REPO

RUN = "run-trace-1"
COMMAND = "golive.cmd.coordinator.abort.v1"


def command():
    return new_envelope(AbortRun(reason="r", requested_by="me"), id=f"{RUN}.abort", source="/golive/cli", runid=RUN)


def event():
    return new_envelope(AbortRequested(reason="r", requested_by="me"), id=f"{RUN}.abort/abort_requested",
                        source="/golive/coordinator", runid=RUN)


@pytest.fixture
def exported():
    """Tracing on in this process, spans kept in memory; ``exported()``: the finished spans, flushed."""
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing("coordinator", "none", span_exporter=exporter)
    try:
        def finished():
            tracing.shutdown_tracing()
            return {span.name: span for span in exporter.get_finished_spans()}
        yield finished
    finally:
        tracing.shutdown_tracing()


def test_tracing_off_adds_no_header_and_starts_no_span():
    assert not tracing.enabled()
    assert nats_headers(command()) == {"Nats-Msg-Id": f"{RUN}.abort", "Content-Type": "application/cloudevents+json"}
    with tracing.sending("s", "id", RUN, COMMAND) as span:
        assert span is None
    with tracing.handling("s", "id", RUN, COMMAND, {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}):
        assert nats_headers(event()) == nats_headers(event()) and "traceparent" not in nats_headers(event())
    assert not tracing.configure_tracing("coordinator", "none")


def test_a_run_has_its_own_trace_id_the_same_in_every_process():
    """A coordinator that resumes a run (another process, later) derives the same trace and root span."""
    elsewhere = subprocess.run([sys.executable, "-c", f"from golive.shared.tracing import run_ids; print(run_ids({RUN!r}))"],
                               capture_output=True, text=True, cwd=REPO, timeout=60, check=True).stdout.strip()
    assert elsewhere == str(tracing.run_ids(RUN))
    assert tracing.run_ids(RUN) != tracing.run_ids(RUN + "x")
    assert all(n > 0 for n in tracing.run_ids(RUN))


def test_a_command_is_a_child_of_the_run_its_handling_a_child_of_the_send_events_link_back(exported):
    trace_id, root_id = tracing.run_ids(RUN)
    with tracing.sending("golive.cmd.coordinator.abort", f"{RUN}.abort", RUN, COMMAND) as span:
        sent = nats_headers(command(), span)
    assert sent["traceparent"].startswith(f"00-{trace_id:032x}-")
    # another process: the headers as they arrive
    with tracing.handling("golive.cmd.coordinator.abort", f"{RUN}.abort", RUN, COMMAND, sent):
        caused = nats_headers(event())  # an event published while the command is handled
    with tracing.handling(f"golive.evt.{RUN}.coordinator.abort_requested", "e", RUN, AbortRequested.TYPE, caused,
                          link=True):
        pass
    tracing.end_run(RUN, datetime.now(UTC) - timedelta(seconds=5), "rolled_back")

    spans = exported()
    send, handle = spans[f"send {COMMAND}"], spans[f"handle {COMMAND}"]
    on_event, root = spans[f"handle {AbortRequested.TYPE}"], spans["golive run"]
    assert {s.context.trace_id for s in spans.values()} == {trace_id}
    assert (root.context.span_id, root.parent) == (root_id, None)
    assert root.status.status_code == StatusCode.ERROR and root.attributes["golive.outcome"] == "rolled_back"
    assert root.start_time < send.start_time  # the root spans the run, from its start
    assert send.kind == SpanKind.PRODUCER and send.parent.span_id == root_id
    assert handle.kind == SpanKind.CONSUMER and handle.parent.span_id == send.context.span_id
    assert caused["traceparent"] == f"00-{trace_id:032x}-{handle.context.span_id:016x}-01"
    assert on_event.parent.span_id == root_id and [link.context.span_id for link in on_event.links] == [
        handle.context.span_id]


def test_a_message_without_context_and_a_tick_belong_to_the_run_root(exported):
    """The CLI sends no trace context; a decision on a tick happens in no span: both hang off the run's root."""
    _, root_id = tracing.run_ids(RUN)
    assert nats_headers(event())["traceparent"].split("-")[2] == f"{root_id:016x}"
    with tracing.handling("golive.cmd.coordinator.abort", "c", RUN, COMMAND, {"Nats-Msg-Id": "c"}):
        pass
    with tracing.handling("golive.cmd.coordinator.abort", "d", RUN, COMMAND, {"traceparent": "garbage"}):
        pass
    assert exported()[f"handle {COMMAND}"].parent.span_id == root_id


def test_a_retried_run_that_ends_again_exports_no_second_root(exported):
    started = datetime.now(UTC) - timedelta(seconds=1)
    tracing.end_run(RUN, started, "rolled_back")
    tracing.end_run(RUN, started, "succeeded", retry_round=1)
    spans = exported()
    _, root_id = tracing.run_ids(RUN)
    assert spans["golive run"].context.span_id == root_id
    assert spans["golive run retry 1"].parent.span_id == root_id
    assert spans["golive run retry 1"].context.span_id != root_id


def test_a_failed_send_says_why_without_the_secret(exported):
    with pytest.raises(RuntimeError):
        with tracing.sending("s", "id", RUN, COMMAND):
            raise RuntimeError("no answer from postgresql://app:hunter2@db.internal/prod")
    with tracing.handling("s", "id2", RUN, COMMAND, None):
        tracing.mark_failed("invalid plan")
    spans = exported()
    failed = spans[f"send {COMMAND}"]
    assert failed.status.status_code == StatusCode.ERROR and "hunter2" not in str(failed.status.description)
    assert not failed.events  # no recorded exception (its text and stack trace are not redacted)
    assert spans[f"handle {COMMAND}"].status.description == "invalid plan"


def test_an_event_handed_back_says_so_and_each_process_is_its_own_instance(exported):
    with tracing.handling("s", "e", RUN, AbortRequested.TYPE, None, link=True, consumer="coordinator-events"):
        tracing.mark_deferred(2.5)
    span = exported()[f"handle {AbortRequested.TYPE}"]
    assert span.attributes["golive.deferred_s"] == 2.5
    assert span.attributes["messaging.consumer.group.name"] == "coordinator-events"
    assert span.resource.attributes["service.name"] == "golive-coordinator"
    assert span.resource.attributes["service.instance.id"].endswith(f"-{os.getpid()}")
