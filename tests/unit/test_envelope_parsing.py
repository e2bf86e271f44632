"""Every message travels as a CloudEvents 1.0 JSON envelope; what cannot be parsed says why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from golive.shared.commands import ProviderSpec, ShiftTraffic
from golive.shared.envelope import Envelope, ParseError, new_envelope, parse_envelope
from golive.shared.events import ProbeCompleted, TrafficShifted, Verdict

AT = datetime(2025, 1, 5, 2, 0, 30, 123456, tzinfo=UTC)


def shifted_envelope() -> Envelope:
    return new_envelope(
        TrafficShifted(provider="dry-run", canary="deploy-new", weight=10, verified_weight=10),
        id="run-1.2.stage1:shift:10/done", source="golive.traffic", runid="run-1",
        subject="golive.evt.run-1.traffic.traffic_shifted", correlationid="run-1.2.stage1:shift:10",
        causationid="cmd-envelope-id", time=AT,
    )


def body_of(envelope: Envelope) -> dict:
    return json.loads(envelope.to_json())


def test_envelope_survives_a_round_trip_through_json():
    envelope = shifted_envelope()

    parsed = parse_envelope(envelope.to_json())

    assert parsed == envelope
    assert isinstance(parsed.data, TrafficShifted)
    assert parsed.time == AT


def test_nested_payload_survives_a_round_trip():
    probe = ProbeCompleted(
        probe="recent", count=10, errors=1, errors_by_class={"timeout": 1}, p50_ms=1.0, p95_ms=2.0, p99_ms=3.0,
        max_ms=4.0, duration_s=2.0, verdicts=[Verdict(metric="p95_ms", limit=400, observed=2.0, passed=True)],
        passed=True, summary="p95 2.00 <= 400 over 11 requests",
    )
    envelope = new_envelope(probe, id="e1", source="golive.prober", runid="run-1", time=AT)

    assert parse_envelope(envelope.to_json()).data == probe


def test_json_body_is_a_structured_mode_cloudevent():
    body = body_of(shifted_envelope())

    assert body["specversion"] == "1.0"
    assert body["type"] == "golive.traffic.traffic_shifted.v1"
    assert body["datacontenttype"] == "application/json"
    assert body["runid"] == "run-1"
    assert body["correlationid"] == "run-1.2.stage1:shift:10"
    data = {"provider": "dry-run", "canary": "deploy-new", "weight": 10, "verified_weight": 10}
    assert {k: body["data"][k] for k in data} == data  # later fields (added compatibly) may follow


def test_new_envelope_takes_its_type_from_the_payload():
    command = ShiftTraffic(provider=ProviderSpec(), canary="deploy-new", weight=50)

    assert new_envelope(command, id="c1", source="golive.coordinator", runid="run-1").type == "golive.cmd.traffic.shift.v1"


def test_unknown_extension_attributes_are_kept():
    body = body_of(shifted_envelope()) | {"traceparent": "00-abc-def-01"}

    parsed = parse_envelope(json.dumps(body).encode())

    assert parsed.model_extra == {"traceparent": "00-abc-def-01"}


@pytest.mark.parametrize("raw", [b"not json", b"{\"type\": ", b"\xff\xfe"])
def test_body_that_is_not_json_is_refused(raw):
    with pytest.raises(ParseError, match="body is not JSON"):
        parse_envelope(raw)


@pytest.mark.parametrize("raw", [b"[1, 2]", b"\"text\"", b"42", b"null"])
def test_json_that_is_not_an_object_is_refused(raw):
    with pytest.raises(ParseError, match="body is not a JSON object"):
        parse_envelope(raw)


@pytest.mark.parametrize(
    ("type_name", "shown"), [("golive.traffic.teleported.v1", "'golive.traffic.teleported.v1'"), (None, "None")]
)
def test_unknown_message_type_is_refused_with_the_type(type_name, shown):
    body = body_of(shifted_envelope())
    if type_name is None:
        del body["type"]
    else:
        body["type"] = type_name

    with pytest.raises(ParseError, match=f"unknown message type {shown}"):
        parse_envelope(json.dumps(body).encode())


def test_invalid_payload_is_refused_naming_the_type_and_the_field():
    body = body_of(shifted_envelope())
    body["data"]["weight"] = 150

    with pytest.raises(ParseError) as raised:
        parse_envelope(json.dumps(body).encode())

    message = str(raised.value)
    assert message.startswith("invalid golive.traffic.traffic_shifted.v1: ")
    assert "weight: " in message
    assert "100" in message


def test_payload_with_an_unknown_field_is_refused():
    body = body_of(shifted_envelope())
    body["data"]["colour"] = "blue"

    with pytest.raises(ParseError, match=r"invalid golive\.traffic\.traffic_shifted\.v1: colour: Extra inputs"):
        parse_envelope(json.dumps(body).encode())


def test_envelope_without_a_run_id_is_refused():
    body = body_of(shifted_envelope())
    del body["runid"]

    with pytest.raises(ParseError, match="invalid golive.traffic.traffic_shifted.v1: runid: Field required"):
        parse_envelope(json.dumps(body).encode())


def test_envelope_of_another_specversion_is_refused():
    body = body_of(shifted_envelope()) | {"specversion": "0.3"}

    with pytest.raises(ParseError, match="specversion: "):
        parse_envelope(json.dumps(body).encode())


def test_missing_payload_is_refused():
    body = body_of(shifted_envelope())
    del body["data"]

    with pytest.raises(ParseError, match=r"invalid golive\.traffic\.traffic_shifted\.v1: \(root\): "):
        parse_envelope(json.dumps(body).encode())
