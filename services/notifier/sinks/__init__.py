"""Notification sinks: one protocol, one module per sink type, a registry by type name.

A sink turns a rendered Notice into the HTTP request its receiver understands; delivery (retries,
Retry-After, the exactly-once ledger) is the same for every sink and lives in services/notifier/delivery.py.
Adding Teams or Discord is one new module here that decorates its class with ``@sink_type("teams")``; out of tree,
a package that declares its class under the entry-point group ``golive.sinks`` (shared/plugins.py; a built-in type
name wins).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from golive.services.notifier.templates import Notice
from golive.shared.plan.notifications import NotificationSink
from golive.shared.plugins import SINKS, installed_plugins


@dataclass(frozen=True)
class Outbound:
    """What to POST: a JSON body and the headers that go with it."""

    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Sink(Protocol):
    """A receiver of messages. ``config`` holds the sink's plan settings (never the URL: that is a secret)."""

    def __init__(self, config: NotificationSink) -> None: ...

    def outbound(self, notice: Notice) -> Outbound:
        """The request that carries ``notice`` to this kind of receiver."""
        ...


class UnknownSink(LookupError):
    """A plan names a sink type no module provides."""


_TYPES: dict[str, Callable[[NotificationSink], Sink]] = {}


def sink_type(name: str):
    """Class decorator: register a sink under its type name (the ``type`` a plan writes)."""

    def register(cls):
        _TYPES[name] = cls
        return cls

    return register


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    for name, target in installed_plugins(SINKS).items():  # loaded on use: a broken plugin fails only its own type
        _TYPES.setdefault(name, _plugin(name, target))


def _plugin(name: str, target: str) -> Callable[[NotificationSink], Sink]:
    def build(config: NotificationSink) -> Sink:
        module, _, attribute = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise UnknownSink(f"sink type {name!r} ({target}, an installed package's) cannot be loaded: {exc}") from None
        return cls(config)

    return build


def known_types() -> list[str]:
    """Every sink type the installed modules provide."""
    if not _TYPES:
        _discover()
    return sorted(_TYPES)


def sink_for(config: NotificationSink) -> Sink:
    """The sink a plan's sink settings describe; UnknownSink names the types there are."""
    if not _TYPES:
        _discover()
    try:
        factory = _TYPES[config.type]
    except KeyError:
        raise UnknownSink(f"no sink of type {config.type!r} (types: {', '.join(sorted(_TYPES))})") from None
    return factory(config)
