"""Print every event of one golive run, from its first, with nothing but nats-py.

This is what a monitoring team needs to follow a go-live: no golive code, just a NATS client reading the
event stream (every message is a CloudEvents 1.0 JSON document). It reads through a consumer of its own, named
in the request (the `monitoring` user of deploy/nats.conf may create no other), held in memory, never acked, and
deleted by the server soon after it stops reading; replies come to the user's own inbox prefix, _INBOX_<user>
(the only one that user may read).

    python examples/subscribe_run.py RUN_ID                 # the run so far, then exit
    python examples/subscribe_run.py RUN_ID --follow        # and then every new event, until the run finishes

Where: NATS_URL, NATS_USER and NATS_PASSWORD, NATS_INBOX_PREFIX (default _INBOX_<user>), GOLIVE_SUBJECT_ROOT
(default golive). Each line: time, event type, source and the event's data as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

RUN_FINISHED = ".coordinator.run_finished.v1"  # the last event of a run (a retry may add another later)
IDLE_S = 30.0  # the server deletes our consumer this long after we stop reading


def line(event: dict) -> str:
    """One event as a line: ``2026-11-23T02:15:03Z golive.traffic.traffic_shifted.v1 /golive/traffic {...}``."""
    data = json.dumps(event.get("data"), separators=(",", ":"), sort_keys=True)
    return f"{event.get('time')} {event.get('type')} {event.get('source')} {data}"


async def print_run(url: str, user: str | None, password: str | None, root: str, run_id: str, follow: bool,
                    inbox_prefix: str | None = None) -> int:
    """Print the run's events in order; return how many were printed."""
    inbox_prefix = inbox_prefix or (f"_INBOX_{user}" if user else "_INBOX")
    nc = await nats.connect(url, user=user, password=password, inbox_prefix=inbox_prefix, connect_timeout=5,
                            max_reconnect_attempts=2)
    try:
        js = nc.jetstream()
        # a push consumer named here, so the server creates it through CONSUMER.CREATE.<stream>.<name>.<filter>
        sub = await js.subscribe(f"{root}.evt.{run_id}.>", manual_ack=True, flow_control=True, idle_heartbeat=5.0,
                                 config=ConsumerConfig(
                                     name=f"monitoring-{secrets.token_hex(8)}", deliver_policy=DeliverPolicy.ALL,
                                     ack_policy=AckPolicy.NONE, inactive_threshold=IDLE_S, mem_storage=True,
                                     num_replicas=1))
        info = await sub.consumer_info()
        printed = 0
        if not follow and info.num_pending == 0 and info.delivered.consumer_seq == 0:
            return 0  # nothing in the stream for this run yet
        while True:
            msg = await sub.next_msg(timeout=3600 if follow else 10)
            event = json.loads(msg.data)
            print(line(event), flush=True)
            printed += 1
            if follow and str(event.get("type", "")).endswith(RUN_FINISHED):
                return printed
            if not follow and msg.metadata.num_pending == 0:
                return printed
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Print every event of one golive run (plain nats-py).")
    parser.add_argument("run_id", help="the run id `golive run` printed, e.g. run-20261123-021503-3fa9c1")
    parser.add_argument("--follow", action="store_true", help="keep printing new events until the run finishes")
    args = parser.parse_args()
    url = os.environ.get("NATS_URL")
    if not url:  # never a guessed localhost: on a shared machine that is someone else's server
        sys.exit("set NATS_URL (and NATS_USER, NATS_PASSWORD) to the golive bus")
    root = os.environ.get("GOLIVE_SUBJECT_ROOT", "golive")
    try:
        printed = asyncio.run(print_run(url, os.environ.get("NATS_USER"), os.environ.get("NATS_PASSWORD"), root,
                                        args.run_id, args.follow, os.environ.get("NATS_INBOX_PREFIX")))
    except (OSError, nats.errors.NoServersError) as exc:
        sys.exit(f"cannot reach NATS ({type(exc).__name__}); set NATS_URL, NATS_USER and NATS_PASSWORD")
    if printed == 0:
        sys.exit(f"no events for run {args.run_id} under {root}.evt.{args.run_id}.>")


if __name__ == "__main__":
    main()
