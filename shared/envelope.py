"""The CloudEvents 1.0 envelope every golive message travels in.

Attributes: specversion, id, source, type, subject, time, datacontenttype, plus the extensions
``runid``, ``correlationid`` (the command that caused this message) and ``causationid`` (the message
this one reacts to). ``data`` is a typed pydantic model found by ``type`` in the message registry.

A monitoring team reads these with any NATS client: the JSON body is a structured-mode CloudEvent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

from opentelemetry.trace import Span
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from golive.shared.ids import RunId
from golive.shared.tracing import message_headers

CONTENT_TYPE: Literal["application/json"] = "application/json"  # of ``data``, inside the envelope
# of the NATS message: a structured-mode CloudEvent, so any client can tell what the body is without parsing it
MESSAGE_CONTENT_TYPE = "application/cloudevents+json"
# The largest body a service parses. Checked before json.loads, so a huge body costs a length check, not memory and
# a core; below the nats-server's default max_payload (1 MiB), so the bound is ours, not the broker's accident.
# A plan travels in StartRun and RunStarted: half a MiB of JSON is far beyond any real runbook.
MAX_MESSAGE_BYTES = 512 * 1024


class Message(BaseModel):
    """Base of every command and event payload. ``TYPE`` is the versioned CloudEvents type name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    TYPE: ClassVar[str]

    @classmethod
    def short_name(cls) -> str:
        """The name used as the last subject token: ``golive.migrator.index_built.v1`` -> ``index_built``."""
        return cls.TYPE.split(".")[-2]


_REGISTRY: dict[str, type[Message]] = {}


M = TypeVar("M", bound="Message")


def message_type(type_name: str) -> Callable[[type[M]], type[M]]:
    """Class decorator: register a payload model under its versioned type name."""

    def register(cls: type[M]) -> type[M]:
        if type_name in _REGISTRY:
            raise RuntimeError(f"message type {type_name} is registered twice")
        cls.TYPE = type_name
        _REGISTRY[type_name] = cls
        return cls

    return register


def registered_types() -> dict[str, type[Message]]:
    """Every known message type, by type name (for docs and the AsyncAPI document)."""
    return dict(_REGISTRY)


class Envelope(BaseModel):
    """A CloudEvents 1.0 structured-mode message with golive's extensions."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: datetime
    datacontenttype: Literal["application/json"] = CONTENT_TYPE
    runid: RunId  # a subject token and a folder name: golive.shared.ids says what it may hold
    correlationid: str | None = None
    causationid: str | None = None
    data: Message

    def to_json(self) -> bytes:
        body = self.model_dump(mode="json", exclude={"data"})
        body["data"] = self.data.model_dump(mode="json")
        return json.dumps(body, separators=(",", ":")).encode()


class ParseError(ValueError):
    """A message that is not a valid golive envelope; it goes to the dead-letter subject."""


def new_envelope(
    data: Message,
    *,
    id: str,
    source: str,
    runid: str,
    subject: str | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
    time: datetime | None = None,
) -> Envelope:
    """Wrap a payload. ``id`` must be deterministic for the fact it states (it is the Nats-Msg-Id)."""
    return Envelope(
        id=id,
        source=source,
        type=data.TYPE,
        subject=subject,
        time=time or datetime.now(UTC),
        runid=runid,
        correlationid=correlationid,
        causationid=causationid,
        data=data,
    )


def nats_headers(envelope: Envelope, span: Span | None = None) -> dict[str, str]:
    """The headers every golive message is published with, whoever sends it (a service, the CLI):
    ``Nats-Msg-Id`` = the envelope id, so JetStream drops a re-send, and the body's content type; with tracing on
    (shared/tracing.py), the W3C ``traceparent`` of ``span`` (default: the current span, else the run's root)."""
    return {"Nats-Msg-Id": envelope.id, "Content-Type": MESSAGE_CONTENT_TYPE,
            **message_headers(envelope.runid, span)}


def parse_envelope(raw: bytes) -> Envelope:
    """Decode and validate a message body; raise ParseError saying what is wrong."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ParseError(f"body is {len(raw)} bytes; a message may have at most {MAX_MESSAGE_BYTES}")
    try:
        body: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ParseError("body is not a JSON object")
    model = _REGISTRY.get(str(body.get("type")))
    if model is None:
        raise ParseError(f"unknown message type {body.get('type')!r}")
    try:
        data = model.model_validate(body.get("data"))
        return Envelope.model_validate({**body, "data": data})
    except ValidationError as exc:
        raise ParseError(f"invalid {model.TYPE}: {_errors(exc)}") from None


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
