"""Print every event of one golive run, from its first, with nothing but nats-py.

This is what a monitoring team needs to follow a go-live: no golive code, just a NATS client reading the
event stream (every message is a CloudEvents 1.0 JSON document). It uses an ordered consumer, which is
ephemeral and needs only read permissions (the `monitoring` user of deploy/nats.conf).

    python examples/subscribe_run.py RUN_ID                 # the run so far, then exit
    python examples/subscribe_run.py RUN_ID --follow        # and then every new event, until the run finishes

Where: NATS_URL (default nats://127.0.0.1:4222), NATS_USER and NATS_PASSWORD, GOLIVE_SUBJECT_ROOT (default
golive). Each line: time, event type, source and the event's data as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

RUN_FINISHED = ".coordinator.run_finished.v1"  # the last event of a run (a retry may add another later)


def line(event: dict) -> str:
    """One event as a line: ``2026-11-23T02:15:03Z golive.traffic.traffic_shifted.v1 /golive/traffic {...}``."""
    data = json.dumps(event.get("data"), separators=(",", ":"), sort_keys=True)
    return f"{event.get('time')} {event.get('type')} {event.get('source')} {data}"


async def print_run(url: str, user: str | None, password: str | None, root: str, run_id: str, follow: bool) -> int:
    """Print the run's events in order; return how many were printed."""
    nc = await nats.connect(url, user=user, password=password, connect_timeout=5, max_reconnect_attempts=2)
    try:
        js = nc.jetstream()
        # ordered consumer: ephemeral, in order, recreated by the client if a message is missed
        sub = await js.subscribe(f"{root}.evt.{run_id}.>", ordered_consumer=True,
                                 config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
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
    url = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
    root = os.environ.get("GOLIVE_SUBJECT_ROOT", "golive")
    try:
        printed = asyncio.run(print_run(url, os.environ.get("NATS_USER"), os.environ.get("NATS_PASSWORD"), root,
                                        args.run_id, args.follow))
    except (OSError, nats.errors.NoServersError) as exc:
        sys.exit(f"cannot reach NATS ({type(exc).__name__}); set NATS_URL, NATS_USER and NATS_PASSWORD")
    if printed == 0:
        sys.exit(f"no events for run {args.run_id} under {root}.evt.{args.run_id}.>")


if __name__ == "__main__":
    main()
