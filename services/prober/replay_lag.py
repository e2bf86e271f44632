"""Replica lag as replay delay: how long WAL the primary has written has waited for a replica to replay it.

The pg_health probe reads the primary's WAL position (``pg_current_wal_lsn()``) with every sample, and each
replica's replay position (``pg_last_wal_replay_lsn()``). A replica that has replayed all the primary had
written by the latest sample is **0 s** behind, however long ago the primary last committed: an idle primary
writes checkpoints and no commits, and the age of the last replayed commit while such WAL waits a moment to be
replayed is no lag (it read as `replica lag 49.14 s > 8 s` on a fresh stack with no write since seeding). A
replica that is behind is as far behind as the oldest WAL it has not replayed is old: from the first sample
that saw the primary past the replica's replay position. The reading is therefore never longer than the
truth: at most one sample interval shorter, and 0 at the first sample of a probe.

pg_stat_replication's ``replay_lag`` (the primary's own measure) is not used: it is keyed by the replica's
application_name, not by the URL the plan names, and it is only refreshed when the replica sends a reply
(every wal_receiver_status_interval, 10 s by default, on an idle primary).
"""

from __future__ import annotations

from collections import deque

MAX_POSITIONS = 100_000  # a replica stuck for hours at a sample a second: bounded memory, oldest kept longest


class ReplayLag:
    """The primary's WAL positions as seen over time, and each replica's replay delay against them."""

    def __init__(self, replicas: int, max_positions: int = MAX_POSITIONS) -> None:
        self._replicas = replicas
        self._max = max_positions
        self._seen: deque[tuple[float, float]] = deque()  # (when first seen, position), positions increasing
        self._replayed: dict[str, float] = {}

    def primary_at(self, position: float, at: float) -> None:
        """The primary's WAL position read at ``at`` (seconds on any monotonic clock; ``position`` in bytes)."""
        if self._seen and position <= self._seen[-1][1]:
            return  # nothing new written, or a reading that left the primary before one already recorded
        self._seen.append((at, position))
        if len(self._seen) > self._max:
            # keep the oldest (the lag of a stuck replica counts from it), thin out the rest
            oldest = self._seen.popleft()
            self._seen.popleft()
            self._seen.appendleft(oldest)

    def lag_s(self, replica: str, replayed: float, now: float) -> float:
        """Seconds since the primary was first seen past ``replayed``, ``replica``'s replay position read at
        ``now``; 0 when the replica has replayed every position seen."""
        self._replayed[replica] = replayed
        lag = 0.0
        for at, position in self._seen:  # oldest first
            if position > replayed:
                lag = max(0.0, now - at)
                break
        self._forget_replayed()
        return lag

    def _forget_replayed(self) -> None:
        """Drop positions every replica has replayed, keeping the latest (the next sample compares with it)."""
        if len(self._replayed) < self._replicas:
            return  # a replica not read yet may still need them
        everyone = min(self._replayed.values())
        while len(self._seen) > 1 and self._seen[0][1] <= everyone:
            self._seen.popleft()
