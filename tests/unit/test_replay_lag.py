"""Replica lag as replay delay (services/prober/replay_lag.py): how long the WAL a replica has not replayed has
been on the primary, from the primary's positions as sampled; never the age of the last commit."""

from __future__ import annotations

from golive.services.prober.replay_lag import ReplayLag


def test_a_replica_that_replayed_everything_is_not_behind_however_long_the_primary_was_idle():
    lag = ReplayLag(replicas=1)
    lag.primary_at(1_000, at=0.0)
    lag.primary_at(1_000, at=3_600.0)  # an hour without a write
    assert lag.lag_s("r", replayed=1_000, now=3_600.1) == 0.0


def test_a_replica_behind_is_as_late_as_the_oldest_position_it_has_not_replayed():
    lag = ReplayLag(replicas=1)
    lag.primary_at(1_000, at=10.0)
    lag.primary_at(2_000, at=11.0)
    lag.primary_at(3_000, at=12.0)
    assert lag.lag_s("r", replayed=1_000, now=14.0) == 3.0  # 2,000 was first seen at 11.0
    assert lag.lag_s("r", replayed=2_500, now=14.0) == 2.0
    assert lag.lag_s("r", replayed=3_000, now=14.0) == 0.0


def test_a_replica_behind_at_the_first_sample_counts_from_that_sample():
    lag = ReplayLag(replicas=1)
    lag.primary_at(5_000, at=100.0)
    assert abs(lag.lag_s("r", replayed=4_000, now=100.2) - 0.2) < 1e-9


def test_a_reading_that_arrives_late_does_not_move_a_position_first_seen_earlier():
    lag = ReplayLag(replicas=1)
    lag.primary_at(2_000, at=1.0)
    lag.primary_at(1_500, at=2.0)  # read before the 2,000 one, answered after it
    lag.primary_at(2_000, at=3.0)
    assert lag.lag_s("r", replayed=1_000, now=5.0) == 4.0


def test_positions_every_replica_replayed_are_forgotten_and_a_slower_replica_keeps_its_own():
    lag = ReplayLag(replicas=2)
    for i in range(1, 101):
        lag.primary_at(i * 100, at=float(i))
    assert lag.lag_s("fast", replayed=10_000, now=100.0) == 0.0
    assert lag.lag_s("slow", replayed=150, now=100.0) == 98.0  # 200 first seen at 2.0
    assert lag.lag_s("slow", replayed=150, now=101.0) == 99.0  # still there: the slow replica needs it


def test_history_is_bounded_and_keeps_the_oldest_unreplayed_position():
    lag = ReplayLag(replicas=1, max_positions=10)
    for i in range(1, 1_001):
        lag.primary_at(i * 100, at=float(i))
    assert lag.lag_s("stuck", replayed=0, now=1_000.0) == 999.0
