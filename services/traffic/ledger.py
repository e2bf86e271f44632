"""What the traffic service itself did: the weight it set last per provider and canary, the weight each
shift command found before it changed anything, and the runs whose canary was rolled back.

Kept in memory and written through to ``<state dir>/traffic-ledger.json`` (replaced atomically), so a
service killed mid-shift and restarted still knows: a redelivered shift reports the weight its first
attempt found (not the one it changed itself), and a shift redelivered after its run rolled back is refused.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

KEEP_COMMANDS = 2_000  # shift records kept; older ones cannot be redelivered any more


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        data = self._load()
        self.last_set: dict[str, int] = data.get("last_set", {})
        self.before: OrderedDict[str, int] = OrderedDict(data.get("before", {}))
        self.fences: set[str] = set(data.get("fences", []))

    def _load(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    @staticmethod
    def fence_key(run_id: str, canary: str) -> str:
        return f"{run_id}|{canary}"

    def fenced(self, run_id: str, canary: str) -> bool:
        """True when this run already rolled ``canary`` back: a late or redelivered shift must not undo that."""
        return self.fence_key(run_id, canary) in self.fences

    def fence(self, run_id: str, canary: str) -> None:
        self.fences.add(self.fence_key(run_id, canary))

    def remember_before(self, command_id: str, weight: int) -> None:
        self.before[command_id] = weight
        while len(self.before) > KEEP_COMMANDS:
            self.before.popitem(last=False)

    def save(self) -> None:
        """Write the ledger (blocking: call it in a thread from async code)."""
        data = {"last_set": self.last_set, "before": dict(self.before), "fences": sorted(self.fences)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, self.path)
