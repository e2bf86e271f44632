"""Routing: which sinks hear of a moment, with which template, from which severity up.

Without ``routes`` a plan sends every kind listed in ``on`` (default: run started, each stage passed, run
succeeded, rollback started, run rolled back, needs human) to every sink with the kind's own template.
With ``routes``, each route names kinds, sinks (none named: all) and a minimum severity; the first route
that takes a (kind, sink) pair decides its template, so a sink never gets one moment twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from golive.shared.plan.notifications import SEVERITY_ORDER, Notifications


@dataclass(frozen=True)
class Route:
    sink: str
    template: str
    min_severity: str = "info"

    def admits(self, severity: str) -> bool:
        """Whether a message of ``severity`` is loud enough for this route."""
        return _rank(severity) >= _rank(self.min_severity)


def routes_for(spec: Notifications, kind: str) -> list[Route]:
    """The (sink, template) pairs a moment of ``kind`` goes to, in plan order, one per sink."""
    if not spec.routes:
        return [Route(sink, kind) for sink in spec.sinks] if kind in spec.kinds_on() else []
    chosen: dict[str, Route] = {}
    for route in spec.routes:
        if kind not in route.events:
            continue
        for sink in route.sinks or list(spec.sinks):
            chosen.setdefault(sink, Route(sink, route.template or kind, route.min_severity))
    return list(chosen.values())


def _rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else 0
