"""The AsyncAPI 3.1 document of golive's bus, generated from the code: docs/asyncapi.yaml.

Every registered message type (golive.shared.envelope's registry) becomes a message whose payload is the
CloudEvents envelope with that type's pydantic JSON Schema as ``data``; every subject of shared/subjects.py
becomes a channel (commands, the per-run event subjects, dead letters, the prober's stop subject); streams,
consumers and the users of deploy/nats.conf are described where a reader looks for them. A test fails when
the committed file differs from what this module generates: `golive docs asyncapi` rewrites it.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from golive.shared.envelope import Message, registered_types
from golive.shared.subjects import DUPLICATE_WINDOW_S, EVENT_MAX_AGE_S, SERVICES, Subjects

DOCUMENT = Path("docs") / "asyncapi.yaml"
CONTENT_TYPE = "application/cloudevents+json"
REF = "#/components/schemas/{model}"


def _load_contracts() -> dict[str, type[Message]]:
    # the registry fills as the contract modules are imported
    import_module("golive.shared.commands")
    import_module("golive.shared.events")
    return dict(sorted(registered_types().items()))


def _package_version() -> str:
    try:
        return version("golive")
    except PackageNotFoundError:
        return "0.0.0"


def _address(type_name: str, subjects: Subjects) -> tuple[str, str]:
    """(channel id, NATS subject with {parameters}) a message of ``type_name`` travels on."""
    parts = type_name.split(".")  # golive.cmd.<service>.<action>.v1 | golive.<source>.<name>.v1
    if parts[1] == "cmd":
        service, action = parts[2], parts[3]
        if (service, action) == ("prober", "stop"):  # core NATS, to every prober instance (golive.shared.commands)
            return "control.prober.stop", subjects.stop_probes("{run_id}")
        return f"command.{service}.{action}", subjects.command(service, action)
    source, name = parts[1], parts[2]
    if name == "dead_lettered":
        return "deadLetters", subjects.dead_letter("{service}")
    if source == "service":  # published by whichever service failed the command
        return f"event.any.{name}", subjects.event("{run_id}", "{service}", name)
    return f"event.{source}.{name}", subjects.event("{run_id}", source, name)


def _split_defs(schema: dict[str, Any], into: dict[str, Any]) -> dict[str, Any]:
    """Move a model schema's $defs into components/schemas (refusing two different schemas of one name)."""
    for name, definition in schema.pop("$defs", {}).items():
        if name in into and into[name] != definition:
            raise ValueError(f"two different schemas are named {name}: rename one of the models")
        into[name] = definition
    return schema


def _as_asyncapi(node: Any) -> Any:
    """A pydantic JSON Schema as AsyncAPI 3's Schema Object wants it: pydantic writes OpenAPI's discriminator
    object (``{"propertyName": "kind", "mapping": ...}``); AsyncAPI's ``discriminator`` is the property's name."""
    if isinstance(node, dict):
        out = {key: _as_asyncapi(value) for key, value in node.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [_as_asyncapi(value) for value in node]
    return node


def _envelope_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A CloudEvents 1.0 structured-mode message with golive's extensions runid, correlationid "
                       "(the command it answers) and causationid (the message it reacts to).",
        "required": ["specversion", "id", "source", "type", "time", "runid", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "minLength": 1, "description": "deterministic; also the Nats-Msg-Id header"},
            "source": {"type": "string", "minLength": 1, "description": "/golive/<service> or /golive/cli"},
            "type": {"type": "string", "minLength": 1},
            "subject": {"type": ["string", "null"], "description": "the NATS subject it was published on"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "runid": {"type": "string", "minLength": 1},
            "correlationid": {"type": ["string", "null"]},
            "causationid": {"type": ["string", "null"]},
            "data": {"type": "object"},
        },
    }


def _stream(config) -> dict[str, Any]:
    """A JetStream stream as the services create it (shared/subjects.py), for readers who size or mirror it."""
    return {"name": config.name, "subjects": list(config.subjects), "retention": config.retention.value,
            "storage": config.storage.value, "max_age_s": config.max_age,
            "duplicate_window_s": config.duplicate_window}


def build_document(subjects: Subjects | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.1 document as a dict (deterministic: the same code gives the same document)."""
    subjects = subjects or Subjects()
    contracts = _load_contracts()
    schemas: dict[str, Any] = {"CloudEvent": _envelope_schema()}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    parameters = {
        "run_id": {"description": "the run: `run-YYYYMMDD-HHMMSS-xxxxxx` from `golive run` (one subject token)"},
        "service": {"description": "the service that published it", "enum": list(SERVICES)},
    }

    for type_name, model in contracts.items():
        name = model.__name__
        schema = _as_asyncapi(model.model_json_schema(ref_template=REF, mode="serialization"))
        schemas[name] = _split_defs(schema, schemas)
        messages[name] = {
            "name": type_name,
            "title": name,
            "summary": (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ") or type_name,
            "contentType": CONTENT_TYPE,
            "headers": {"type": "object", "properties": {
                "Nats-Msg-Id": {"type": "string", "description": "the envelope id: JetStream drops a re-send"}}},
            "payload": {"allOf": [{"$ref": "#/components/schemas/CloudEvent"}, {
                "type": "object",
                "properties": {"type": {"const": type_name}, "data": {"$ref": REF.format(model=name)}}}]},
        }
        channel_id, address = _address(type_name, subjects)
        channel_id = channel_id.replace(".", "_")  # ids are one token in AsyncAPI's component key pattern
        channel = channels.setdefault(channel_id, {"address": address, "messages": {}})
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        used = [p for p in parameters if f"{{{p}}}" in address]
        if used:
            channel["parameters"] = {p: {"$ref": f"#/components/parameters/{p}"} for p in used}

    for channel_id, channel in channels.items():
        kind = channel_id.split("_")[0]
        if kind == "command":
            service = channel_id.split("_")[1]
            channel["description"] = (f"Stream {subjects.command_stream} (work queue): each command is taken by one "
                                      f"{service} instance through the durable consumer `{service}`.")
            action, verb = "receive", f"{service} takes"
        elif kind == "control":
            channel["description"] = "Core NATS (not a stream): every prober instance listens; the one running the "\
                                     "named command stops it."
            action, verb = "receive", "prober takes"
        elif kind == "deadLetters":
            channel["description"] = (f"Stream {subjects.dead_letter_stream}: a message a service could not parse, "
                                      "with the error.")
            action, verb = "send", "a service sends"
        else:
            channel["description"] = (f"Stream {subjects.event_stream} (limits, {EVENT_MAX_AGE_S / 86400:.0f} days): the "
                                      f"audit log and monitoring feed; read a run with an ordered consumer on "
                                      f"`{subjects.events_of_run('{run_id}')}`. A run's events are ordered by "
                                      "their stream sequence (the JetStream message metadata), which is the order "
                                      "the coordinator decided in; `time` is each producer's clock and may run "
                                      "backwards between producers by milliseconds.")
            action, verb = "send", "golive publishes"
        operations[channel_id] = {
            "action": action,
            "summary": f"{verb} {', '.join(channel['messages'])}",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in channel["messages"]],
        }

    return {
        "asyncapi": "3.1.0",
        "info": {
            "title": "golive bus",
            "version": _package_version(),
            "description": (
                "The messages golive's five services (coordinator, migrator, prober, traffic, notifier) exchange over "
                "NATS JetStream. Commands go to the work-queue stream "
                f"{subjects.command_stream} (`{subjects.root}.cmd.<service>.<action>`), events to "
                f"{subjects.event_stream} (`{subjects.root}.evt.<run_id>.<source>.<name>`), unparseable messages to "
                f"{subjects.dead_letter_stream}. Every message is a CloudEvents 1.0 JSON document; the `Nats-Msg-Id` "
                f"header is its id, deduplicated within {DUPLICATE_WINDOW_S:.0f} s, and `Content-Type` the only other "
                f"header golive sets. Order events by their {subjects.event_stream} stream sequence, never by "
                "`time`. Generated from the code by "
                "`golive docs asyncapi`; the subject root is configurable (GOLIVE_SUBJECT_ROOT)."),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {"host": "127.0.0.1:{port}", "protocol": "nats",
                      "description": "`golive up`: the embedded stack on loopback, no authentication",
                      # a free port each time, never the standard one (another team's server may listen there)
                      "variables": {"port": {"description": "the port `golive up` prints (also in .golive/stack.json)"}}},
            "compose": {"host": "nats:4222", "protocol": "nats",
                        "description": "docker-compose.yml: one user per service, `operator` for the CLI, a read-only "
                                       "`monitoring` user (permissions in deploy/nats.conf)",
                        "security": [{"$ref": "#/components/securitySchemes/userPassword"}]},
        },
        "channels": channels,
        "operations": operations,
        "x-streams": [_stream(config) for config in subjects.stream_configs()],
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "messages": messages,
            "parameters": parameters,
            "securitySchemes": {"userPassword": {"type": "userPassword",
                                                 "description": "GOLIVE_NATS_USER / GOLIVE_NATS_PASSWORD"}},
        },
    }


def render(document: dict[str, Any] | None = None) -> str:
    """The document as YAML text, as committed in docs/asyncapi.yaml."""
    header = "# Generated by `golive docs asyncapi` from shared/ (do not edit by hand; a test checks it is current)\n"
    return header + yaml.safe_dump(document or build_document(), sort_keys=False, allow_unicode=True, width=120)


def write(path: Path = DOCUMENT) -> Path:
    """Write the document to ``path``; returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    return path
