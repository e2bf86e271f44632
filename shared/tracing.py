"""OpenTelemetry tracing across the bus: one trace per run, off by default.

On with ``GOLIVE_OTEL_EXPORTER=otlp`` (the ``tracing`` extra: the SDK and its OTLP/HTTP exporter), which sends to the
standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (Tempo, Jaeger, an OpenTelemetry
Collector). Off, nothing here starts a span, exports or adds a header: every function below is a no-op.

The shape of a run's trace:

- The trace id and the root span's id are derived from the run id (``run_root``): every process, and a coordinator
  that resumes a run another one started, joins the same trace without being told, and no event has to carry it.
  The root span itself is exported when the run ends (``end_run``), by the coordinator that ends it, spanning from
  the run's start; a run that never ends leaves its spans under a root nobody exported (trace UIs show that).
- Each command sent to the command stream is a PRODUCER span, a child of the root (``sending``), linked to the span
  the sender was in (the event that caused the command); its W3C ``traceparent`` travels in the message headers.
- Handling a command is a CONSUMER span, a child of the sending span named by ``traceparent`` (``handling``); the
  events published while it runs carry its context.
- Handling an event is a CONSUMER span, a child of the root, linked to the span that published the event
  (``handling(..., link=True)``): events link back to their producer rather than nest under it.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from golive.shared.secrets import redact

Exporter = Literal["none", "otlp"]
INSTRUMENTATION = "golive"
_W3C = TraceContextTextMapPropagator()  # W3C Trace Context: traceparent (and tracestate) headers


class _State:
    """This process's tracing: None until ``configure_tracing`` turns it on."""

    provider: Any = None
    tracer: trace.Tracer | None = None


_state = _State()
# the ids the next span started gets, instead of random ones: only the run's root span (end_run)
_fixed_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("golive_fixed_ids", default=None)


def enabled() -> bool:
    """Whether this process traces (``configure_tracing`` was called with an exporter)."""
    return _state.tracer is not None


def configure_tracing(service: str, exporter: Exporter, span_exporter: Any = None) -> bool:
    """Turn tracing on for this process as service ``service`` when ``exporter`` is not "none": spans go in batches
    to OTLP/HTTP (or to ``span_exporter``, an SDK SpanExporter: tests). Returns whether tracing is on. Call after the
    process forked (the batch processor has a thread), once; ``shutdown_tracing`` flushes."""
    if exporter == "none" and span_exporter is None:
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:  # the SDK is in the `tracing` extra
        raise RuntimeError("GOLIVE_OTEL_EXPORTER is set but the OpenTelemetry SDK is not installed: "
                           "pip install 'golive[tracing]'") from exc
    if span_exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter()  # endpoint, headers, timeout: the standard OTEL_EXPORTER_OTLP_* variables
    # service.name: each service its own, service.instance.id: each process (instances of a service, a coordinator
    # that took a run over); OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME still apply over them
    resource = Resource.create({"service.name": f"golive-{service}", "service.namespace": "golive",
                                "service.instance.id": f"{socket.gethostname()}-{os.getpid()}"})
    provider = TracerProvider(resource=resource, id_generator=_run_id_generator(), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    _state.provider, _state.tracer = provider, provider.get_tracer(INSTRUMENTATION)
    return True


def shutdown_tracing() -> None:
    """Export the spans still buffered and turn tracing off (a service's graceful stop)."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    if provider is not None:
        provider.shutdown()


def _run_id_generator() -> Any:
    from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

    class RunIds(IdGenerator):  # random ids, except the ones ``_fixed_ids`` names
        random = RandomIdGenerator()

        def generate_span_id(self) -> int:
            fixed = _fixed_ids.get()
            return fixed[1] if fixed else self.random.generate_span_id()

        def generate_trace_id(self) -> int:
            fixed = _fixed_ids.get()
            return fixed[0] if fixed else self.random.generate_trace_id()

    return RunIds()


# --- the run's trace -------------------------------------------------------------------------------


def run_ids(run_id: str) -> tuple[int, int]:
    """(trace id, root span id) of run ``run_id``: from a hash of the run id, the same in every process, never 0."""
    digest = hashlib.sha256(f"golive-run:{run_id}".encode()).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    return trace_id, span_id


def run_root(run_id: str) -> otel_context.Context:
    """A context whose span is the run's root (remote: exported by whoever ends the run), to start children in."""
    trace_id, span_id = run_ids(run_id)
    root = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(root))


def end_run(run_id: str, started_at: datetime, outcome: str | None, retry_round: int = 0) -> None:
    """Export the run's root span, from ``started_at`` to now, once the run ended (``outcome``). A run ended again
    after `golive retry` (``retry_round``) exports a child of it instead: a span id is exported once."""
    tracer = _state.tracer
    if tracer is None:
        return
    attributes = {"golive.run_id": run_id, "golive.outcome": outcome or ""}
    start_ns = int(started_at.timestamp() * 1e9)
    if retry_round:
        tracer.start_span(f"golive run retry {retry_round}", context=run_root(run_id), start_time=start_ns,
                          attributes=attributes).end()
        return
    token = _fixed_ids.set(run_ids(run_id))
    try:
        span = tracer.start_span("golive run", context=otel_context.Context(), start_time=start_ns,
                                 attributes=attributes)
    finally:
        _fixed_ids.reset(token)
    if outcome not in ("succeeded", None):
        span.set_status(Status(StatusCode.ERROR, outcome))
    span.end()


# --- messages ---------------------------------------------------------------------------------------


def message_headers(run_id: str, span: Span | None = None) -> dict[str, str]:
    """The trace headers of a message of run ``run_id``: ``traceparent`` of ``span`` (default: the current one), else
    of the run's root span; none when tracing is off."""
    if _state.tracer is None:
        return {}
    span = span or trace.get_current_span()
    context = trace.set_span_in_context(span) if span.get_span_context().is_valid else run_root(run_id)
    headers: dict[str, str] = {}
    _W3C.inject(headers, context=context)
    return headers


def _span_context(headers: Mapping[str, str] | None) -> SpanContext | None:
    """The producer's span context a message's headers name, if valid."""
    if not headers:
        return None
    found = trace.get_current_span(_W3C.extract(dict(headers))).get_span_context()
    return found if found.is_valid else None


def _message_attributes(subject: str, message_id: str, run_id: str, message_type: str) -> dict[str, str]:
    return {"messaging.system": "nats", "messaging.destination.name": subject, "messaging.message.id": message_id,
            "golive.run_id": run_id, "golive.type": message_type}


@contextmanager
def sending(subject: str, message_id: str, run_id: str, message_type: str) -> Iterator[Span | None]:
    """A PRODUCER span for a command sent now, ended when the block ends (after its PubAck): a child of the run's
    root, linked to the current span (the event that caused the command). Not made current, so the commands of one
    batch are siblings. None when tracing is off. The message's headers: ``message_headers(run_id, span)``."""
    tracer = _state.tracer
    if tracer is None:
        yield None
        return
    current = trace.get_current_span().get_span_context()
    span = tracer.start_span(f"send {message_type}", context=run_root(run_id), kind=SpanKind.PRODUCER,
                             links=[Link(current)] if current.is_valid else [],
                             attributes=_message_attributes(subject, message_id, run_id, message_type))
    try:
        yield span
    except BaseException as exc:  # the reason, redacted: an exception's text may hold a URL with its password
        span.set_status(Status(StatusCode.ERROR, redact(f"{type(exc).__name__}: {exc}")))
        raise
    finally:
        span.end()


@contextmanager
def handling(subject: str, message_id: str, run_id: str, message_type: str, headers: Mapping[str, str] | None,
             link: bool = False, consumer: str = "") -> Iterator[None]:
    """A CONSUMER span around handling one message, current while it runs. Its parent: the span its headers name
    (a command), else the run's root; ``link``: always the root, linked to the span the headers name (an event).
    ``consumer``: the durable consumer it came from (one process may read an event on two: the coordinator)."""
    tracer = _state.tracer
    if tracer is None:
        yield
        return
    producer = _span_context(headers)
    links = [Link(producer)] if link and producer is not None else []
    parent = trace.set_span_in_context(NonRecordingSpan(producer)) if producer is not None and not link \
        else run_root(run_id)
    attributes = _message_attributes(subject, message_id, run_id, message_type)
    if consumer:
        attributes["messaging.consumer.group.name"] = consumer
    span = tracer.start_span(f"handle {message_type}", context=parent, kind=SpanKind.CONSUMER, links=links,
                             attributes=attributes)
    # not the SDK's record_exception: an exception's text may hold a secret; mark_failed is given redacted reasons
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        yield


def mark_deferred(delay_s: float) -> None:
    """Say on the current span that the message was handed back to be handled later or elsewhere (Defer)."""
    if _state.tracer is not None:
        trace.get_current_span().set_attribute("golive.deferred_s", delay_s)


def mark_failed(reason: str) -> None:
    """Mark the current span failed with ``reason`` (already redacted)."""
    if _state.tracer is not None:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_status(Status(StatusCode.ERROR, reason))
