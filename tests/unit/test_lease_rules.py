"""The pure rules of run leases: whose lease it is, when it expires, when to renew, how to say who holds it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from golive.services.coordinator.lease import (
    Lease,
    describe_holder,
    held_by_other,
    is_expired,
    is_mine,
    new_owner_id,
    renewal_due,
    seconds_until_expiry,
)

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
TTL = 15.0


def lease(owner: str = "host:1:abc", renewed_s: float = 0.0) -> Lease:
    return Lease(owner=owner, run_id="run-1", since=T0, renewed_at=T0 + timedelta(seconds=renewed_s), revision=7)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_lease_is_mine_only_when_my_owner_id_wrote_it():
    assert is_mine(lease("host:1:abc"), "host:1:abc")
    assert not is_mine(lease("host:1:abc"), "host:1:def")  # same host and pid, another start
    assert not is_mine(None, "host:1:abc")


def test_a_lease_expires_when_not_renewed_within_the_ttl():
    assert not is_expired(lease(), at(14.9), TTL)
    assert is_expired(lease(), at(15.0), TTL)
    assert not is_expired(lease(renewed_s=10), at(20), TTL)  # a renewal moves the expiry


def test_renewal_is_due_every_third_of_the_ttl():
    assert not renewal_due(lease(), at(4.9), TTL)
    assert renewal_due(lease(), at(5.0), TTL)


def test_a_run_is_held_by_another_only_while_their_lease_is_live():
    assert held_by_other(lease("b"), "a", at(1), TTL)
    assert not held_by_other(lease("b"), "a", at(15), TTL)  # expired: may be taken over
    assert not held_by_other(lease("a"), "a", at(1), TTL)  # ours
    assert not held_by_other(None, "a", at(1), TTL)  # nobody's


def test_seconds_until_expiry_counts_down_to_zero():
    assert seconds_until_expiry(lease(), at(5), TTL) == 10.0
    assert seconds_until_expiry(lease(), at(20), TTL) == 0.0


def test_the_holder_is_described_with_its_owner_and_last_renewal():
    text = describe_holder(lease("db-host:42:9f1a2b", renewed_s=0), at(3.4))
    assert text == "run run-1 is driven by db-host:42:9f1a2b (lease renewed 3 s ago); waiting for it to end or expire"


def test_a_lease_survives_its_json_form_with_its_revision():
    original = lease()
    assert Lease.from_json(original.to_json(), revision=7) == original


def test_owner_ids_name_host_and_pid_and_differ_between_starts():
    first, second = new_owner_id(), new_owner_id()
    assert first != second
    assert first.split(":")[1] == second.split(":")[1]  # same pid
