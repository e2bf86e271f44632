"""The delivery ledger's claims on a real JetStream KV bucket: one instance posts a message at a time, a dead
instance's claim lapses, and a recorded outcome is final."""

from __future__ import annotations

import secrets

import nats
import pytest

from golive.services.notifier.delivery import DeliveryLedger, LostClaim


@pytest.fixture
async def ledger(nats_url):
    bucket = f"T{secrets.token_hex(4).upper()}_NOTIFICATIONS"
    nc = await nats.connect(nats_url)
    try:
        yield await DeliveryLedger.open(nc.jetstream(), bucket)
        await nc.jetstream().delete_key_value(bucket)
    finally:
        await nc.close()


async def test_a_claimed_delivery_is_held_for_its_owner_until_its_outcome_is_recorded(ledger):
    key = DeliveryLedger.key("run-1/e1", "rollback_started", "slack")
    mine = await ledger.claim(key, "a")
    assert mine.revision is not None and mine.done is None
    assert (await ledger.claim(key, "b")).held_by == "a"  # b must not post it too
    assert await ledger.get(key) is None  # a claim is not a delivery
    assert (await ledger.claim(key, "a")).revision is not None  # its owner may go on

    await ledger.record(key, {"outcome": "sent", "attempts": 1})
    assert (await ledger.claim(key, "b")).done == {"outcome": "sent", "attempts": 1}
    assert await ledger.get(key) == {"outcome": "sent", "attempts": 1}


async def test_a_lapsed_claim_is_taken_over_and_its_old_owner_loses_it(ledger):
    key = DeliveryLedger.key("run-1/e2", "run_rolled_back", "slack")
    dead = await ledger.claim(key, "a", lease_s=-1.0)  # its owner was killed: never renewed
    taken = await ledger.claim(key, "b")
    assert taken.revision is not None and taken.revision != dead.revision
    with pytest.raises(LostClaim):
        await ledger.renew(key, "a", dead.revision)
    assert await ledger.renew(key, "b", taken.revision) > taken.revision
