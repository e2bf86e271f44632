"""What the read commands print with ``--json``: plain JSON on stdout, one document per command, for scripts.

The shapes are documented in docs/client.md (and stable: fields may be added, never renamed or removed). They are
the records the Python client returns (golive/api.py), dumped as pydantic dumps them (times ISO 8601 with their
offset), never a terminal's text: no styles, no markup, nothing wrapped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from golive.shared.plan import Plan, PlanError
from golive.shared.run_summary import RunSummary, WatchRecord
from golive.shared.secrets import redact


def emit(document: Any) -> None:
    """``document`` as one JSON text on stdout (never through Rich: a plan's or a database's text stays data)."""
    print(json.dumps(document, ensure_ascii=False), flush=True)


def run_document(summary: RunSummary) -> dict[str, Any]:
    """A run, as `golive status [RUN] --json` prints it: the run's summary (shared/run_summary.py) with its
    ``outcome`` (succeeded, rolled_back, needs_human or running) and ``health`` (the Argo Rollouts word)."""
    return summary.model_dump(mode="json") | {"outcome": summary.outcome, "health": summary.health}


def watch_document(watch: WatchRecord) -> dict[str, Any]:
    """A post-deploy watch, as `golive watch [RUN] --json` prints it."""
    return watch.model_dump(mode="json")


def valid_plan_document(path: Path, plan: Plan) -> dict[str, Any]:
    """A plan `golive plan check --json` found valid: what it would run."""
    return {"plan": str(path), "valid": True, "name": plan.name, "migrations": len(plan.migrations.statements),
            "smoke": len(plan.smoke), "stages": [s.weight for s in plan.canary.stages], "problems": []}


def invalid_plan_document(path: Path, error: PlanError) -> dict[str, Any]:
    """A plan `golive plan check --json` refused: every problem with its line (null: not known), its place in the
    plan (empty: the file as a whole) and why (credentials redacted, as on the terminal)."""
    return {"plan": str(path), "valid": False, "problems": [
        {"line": p.line, "where": p.where, "reason": redact(p.reason)} for p in error.found]}
