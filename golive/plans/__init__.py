"""The plans golive ships, and what golive does to a plan file before a run.

``SKELETON`` (skeleton.yaml: the runbook's shape in seconds, a dry-run traffic provider) and ``RUNBOOK``
(supabase-golive.yaml: the runbook step by step, what `golive demo` runs) are package data: they are installed with
golive, so `golive demo` and the plans `golive up` names work from any directory. They live only here; the Docker
image copies them to /app/plans at build time. check.py is `golive plan check`; rehearsal.py compresses a plan's
clock (`--time-scale`).
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
SKELETON = FOLDER / "skeleton.yaml"
RUNBOOK = FOLDER / "supabase-golive.yaml"
