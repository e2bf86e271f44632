"""Who may say what: a message counts only when its subject, its envelope and its type agree on who sent it.

NATS permissions (deploy/nats.conf) let each service's user publish events only on its own source segment,
``<root>.evt.<run_id>.<service>.<name>``, and only the coordinator (and the operator, for coordinator
commands) publish commands. The subject is therefore the one part of a message its sender cannot choose
freely; the envelope and the type are whatever the sender wrote. So an event is trusted only when:

- its subject is ``<root>.evt.<run_id>.<service>.<name>`` with ``service`` a golive service;
- the envelope's ``runid`` is that run and its ``source`` is that service (``/golive/<service>``);
- its type belongs to that service (``golive.<service>.<name>.v1``, or a ``golive.service.*`` type every
  service publishes, whose ``service`` field must name the same service), and ``name`` is the type's name.

A command is trusted only when its type names the service and action of its subject and its run id is one
subject token. Anything else is
refused with the reason: dead-lettered when it arrives, skipped when a run is replayed (shared/event_log.py),
so a forged answer is never folded into a run, live or on replay.
"""

from __future__ import annotations

from golive.shared.envelope import Envelope
from golive.shared.subjects import SERVICES, Subjects, check_token

ANY_SERVICE = "service"  # golive.service.<name>.v1: published by every service about itself (command_failed)


def source_of(service: str) -> str:
    """The envelope ``source`` of ``service``'s messages."""
    return f"/golive/{service}"


def event_origin_problem(subject: str, envelope: Envelope, root: str) -> str | None:
    """Why the event ``envelope`` received on ``subject`` cannot be trusted, or None when it can."""
    tokens = subject.split(".")
    if len(tokens) != 5 or tokens[0] != root or tokens[1] != "evt":
        return f"{subject} is not an event subject ({root}.evt.<run_id>.<service>.<name>)"
    _root, _evt, run_id, service, name = tokens
    if service not in SERVICES:
        return f"{subject}: {service!r} is not a golive service"
    if envelope.runid != run_id:
        return f"runid {envelope.runid!r} is not the run of its subject {subject}"
    if envelope.source != source_of(service):
        return f"source {envelope.source!r} is not {source_of(service)!r}, the service of its subject {subject}"
    owner = _type_owner(envelope.type)
    if owner == ANY_SERVICE:
        claimed = getattr(envelope.data, "service", None)
        if claimed != service:
            return f"{envelope.type} names service {claimed!r} but was published by {service} on {subject}"
    elif owner != service:
        return f"{envelope.type} belongs to {owner}, not to {service} that published it on {subject}"
    if name != envelope.data.short_name():
        return f"{envelope.type} arrived on {subject}, whose last token should be {envelope.data.short_name()!r}"
    return None


def command_origin_problem(subject: str, envelope: Envelope, root: str) -> str | None:
    """Why the command ``envelope`` received on ``subject`` cannot be trusted, or None when it can."""
    try:
        check_token(envelope.runid, "runid")  # it names the run's subjects: never a wildcard or several tokens
    except ValueError as exc:
        return str(exc)
    parts = envelope.type.split(".")
    if len(parts) != 5 or parts[1] != "cmd":
        return f"{envelope.type} is not a command type"
    expected = Subjects(root).command(parts[2], parts[3])
    if subject != expected:
        return f"{envelope.type} arrived on {subject}; it is sent on {expected}"
    return None


def _type_owner(type_name: str) -> str:
    """``golive.prober.probe_completed.v1`` -> ``prober``."""
    parts = type_name.split(".")
    return parts[1] if len(parts) == 4 and parts[0] == "golive" else ""
