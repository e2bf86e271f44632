"""The run history: every run's summary and every post-deploy watch's, in the JetStream KV bucket ``<ROOT>_RUNS``.

Listing runs (`golive status`), the weekly report and `golive watch`'s list read this bucket, one record per run,
never the event stream: their cost grows with the runs kept, not with the events ever recorded (a run leaves
about 1,800 events). Keys: ``run.<run_id>`` (shared/run_summary.py's RunSummary, JSON) and ``watch.<run_id>``
(WatchRecord). Only the coordinator writes them (deploy/nats.conf); the CLI reads them.

The bucket is read the way the event log is (shared/event_log.py): a pull consumer named in the create subject
(``<user>-read-<random>``), ephemeral, here delivering the last value of each key only.
"""

from __future__ import annotations

from typing import TypeVar

from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, KeyValueConfig, StorageType
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from golive.shared.event_log import LogReader, ReaderLost
from golive.shared.run_summary import RunSummary, Stored, WatchRecord

RUN_PREFIX, WATCH_PREFIX = "run.", "watch."
READ_TRIES = 3  # a read whose consumer was lost starts again from the first key, this many times at most

R = TypeVar("R", bound=Stored)


def runs_bucket(root: str) -> str:
    return f"{root.upper()}_RUNS"


def bucket_config(root: str, replicas: int = 1) -> KeyValueConfig:
    """How the coordinator creates the bucket: no TTL (summaries are kept as long as runs are reported on), one
    value per key."""
    return KeyValueConfig(bucket=runs_bucket(root), history=1, storage=StorageType.FILE, replicas=replicas,
                          description="golive coordinator: each run's summary and each post-deploy watch's")


def run_key(run_id: str) -> str:
    return f"{RUN_PREFIX}{run_id}"


def watch_key(run_id: str) -> str:
    return f"{WATCH_PREFIX}{run_id}"


async def read_runs(js: JetStreamContext, root: str) -> list[RunSummary]:
    """Every run's summary, in start order ([] before the coordinator created the bucket)."""
    runs = await _read(js, root, RUN_PREFIX, RunSummary)
    return sorted(runs, key=lambda r: r.started_at)


async def read_watches(js: JetStreamContext, root: str) -> list[WatchRecord]:
    """Every post-deploy watch's summary, in start order."""
    watches = await _read(js, root, WATCH_PREFIX, WatchRecord)
    return sorted(watches, key=lambda w: w.started_at)


async def _read(js: JetStreamContext, root: str, prefix: str, model: type[R]) -> list[R]:
    """The last value of each key under ``prefix``, parsed as ``model`` (a value that does not parse is skipped:
    the coordinator writes it again when it rebuilds summaries)."""
    stream, subject = f"KV_{runs_bucket(root)}", f"$KV.{runs_bucket(root)}.{prefix}>"
    for attempt in range(READ_TRIES):
        reader = LogReader(js, stream, subject, patience_s=10.0, deliver=DeliverPolicy.LAST_PER_SUBJECT)
        found: dict[str, R] = {}
        try:
            try:
                pending = await reader.open(1)
            except NotFoundError:
                return []  # no bucket yet: no run has been summarised
            while pending:
                messages = await reader.pull()
                if not messages:
                    break
                for msg in messages:
                    pending = msg.metadata.num_pending
                    if not msg.data:  # a deleted key (KV-Operation DEL or PURGE)
                        found.pop(msg.subject, None)
                        continue
                    try:
                        found[msg.subject] = model.model_validate_json(msg.data)
                    except ValidationError:
                        continue
            return list(found.values())
        except ReaderLost:
            if attempt == READ_TRIES - 1:
                raise TimeoutError(f"reading {subject} kept losing its consumer") from None
        finally:
            await reader.close()
    return []
