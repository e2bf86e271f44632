"""KV buckets as the services' streams: created when missing, never changed once they exist.

A bucket's TTL, history and replicas are the operator's once it exists (re-creating it with other values would fail, and
deleting it would lose the leases or the delivery ledger): a bucket that differs from what golive would create is
used as it is, and the difference is logged (``kv.settings_differ``) naming the settings.
"""

from __future__ import annotations

from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StreamConfig
from nats.js.errors import BadRequestError, BucketNotFoundError

from golive.shared.bus import settings_differences, until_answered

# a bucket's settings as its stream holds them: TTL is max_age, history is max_msgs_per_subject
BUCKET_SETTINGS = ("max_age", "max_msgs_per_subject", "storage", "num_replicas")


async def open_bucket(js: JetStreamContext, config: KeyValueConfig, log: Any = None) -> Any:
    """The bucket ``config.bucket``: the existing one as it is (what differs is logged), else created from ``config``
    (its ``replicas``: the caller's GOLIVE_STREAM_REPLICAS)."""
    kv, created = await until_answered(lambda: _created_or_found(js, config))
    if created:
        return kv
    expected = StreamConfig(max_age=config.ttl, max_msgs_per_subject=config.history, storage=config.storage,
                            num_replicas=config.replicas)
    actual = (await until_answered(kv.status)).stream_info.config
    if found := settings_differences(expected, actual, BUCKET_SETTINGS):
        (log or structlog.get_logger()).warning("kv.settings_differ", bucket=config.bucket, differences=found,
                                                action="kept the bucket's settings")
    return kv


async def _created_or_found(js: JetStreamContext, config: KeyValueConfig) -> tuple[Any, bool]:
    """The bucket and whether it was created now (else it existed)."""
    try:
        return await js.key_value(config.bucket), False
    except BucketNotFoundError:
        try:
            return await js.create_key_value(config), True
        except BadRequestError:  # another process created it meanwhile, maybe otherwise: use theirs
            return await js.key_value(config.bucket), False
