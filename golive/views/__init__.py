"""How runs read on a terminal: lines.py (one line per event), live.py (the live panel of a run),
as_json.py (what the read commands print with --json)."""
