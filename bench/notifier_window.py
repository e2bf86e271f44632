"""notifier_window: how long the notifier's duplicate window stays open, against the post it follows.

The notifier posts a message, then records the delivery in a JetStream KV bucket, then acks the event
(services/notifier/delivery.py). A notifier killed after the receiver accepted the post and before the
ledger write is acknowledged posts the message again after a restart: that gap is the window. Measured
here with the notifier's own code (``delivery.post`` and ``DeliveryLedger.record``) on an embedded
nats-server (JetStream, file storage) and a local webhook receiver (golive/stack/webhook_sink.py), both loopback.

- reference: the webhook post itself (build, send, 200 ok), measured in the same loop.
- window: from the post's answer to the ledger write acknowledged.

Printed: p50/p90/p99/max of both, and ``notifier_window: ratio R (target T): met|missed`` with R = window
p99 / post p99. Against a real Slack (a post takes 100+ ms over the internet) the window is far smaller
than against this loopback receiver, so a ratio below 1 here is a safe bound. Exit 1 when missed.

Run: ``python bench/notifier_window.py [--n 1000] [--warmup 50] [--target 1.0]``
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx
import nats
from hdrh.histogram import HdrHistogram

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from bench.trials import trials_parser  # noqa: E402
from golive.services.notifier.delivery import DeliveryLedger, RetryPolicy, post  # noqa: E402
from golive.services.notifier.sinks import Outbound  # noqa: E402
from golive.stack.nats_server import EmbeddedNats  # noqa: E402
from golive.stack.webhook_sink import WebhookSink  # noqa: E402

NAME = "notifier_window"
BODY = Outbound({"text": "✅ skeleton stage 1 of 3 passed: 10% on dpl_new",
                 "attachments": [{"color": "#439FE0", "fields": [{"title": "Traffic", "value": "10%", "short": True}]}]})


async def measure(nats_url: str, webhook_url: str, n: int, warmup: int) -> tuple[HdrHistogram, HdrHistogram]:
    posts, windows = HdrHistogram(1, 60_000_000, 3), HdrHistogram(1, 60_000_000, 3)
    nc = await nats.connect(nats_url)
    try:
        ledger = await DeliveryLedger.open(nc.jetstream(), f"BENCH{secrets.token_hex(4).upper()}_NOTIFICATIONS")
        async with httpx.AsyncClient() as client:
            for i in range(warmup + n):
                t0 = time.perf_counter()
                await post(client, webhook_url, BODY, RetryPolicy(attempts=1))
                t1 = time.perf_counter()
                await ledger.record(DeliveryLedger.key(f"run-bench/e{i}", "stage_passed", "slack"), {"outcome": "sent"})
                t2 = time.perf_counter()
                if i >= warmup:
                    posts.record_value(max(1, int((t1 - t0) * 1e6)))
                    windows.record_value(max(1, int((t2 - t1) * 1e6)))
    finally:
        await nc.close()
    return posts, windows


def summary(label: str, h: HdrHistogram) -> str:
    ms = {p: h.get_value_at_percentile(p) / 1000 for p in (50, 90, 99)}
    return f"{label:<28} p50 {ms[50]:.3f} ms  p90 {ms[90]:.3f} ms  p99 {ms[99]:.3f} ms  max {h.get_max_value() / 1000:.3f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = trials_parser(__doc__, "deliveries", n=1000, warmup=50)
    parser.add_argument("--target", type=float, default=1.0, help="highest acceptable window p99 / post p99")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-nats-") as tmp, WebhookSink() as sink:
        with EmbeddedNats(Path(tmp)) as server:
            posts, windows = asyncio.run(measure(server.url, sink.url, args.n, args.warmup))

    print(f"{NAME}: {args.n} deliveries after {args.warmup} warm-up; embedded nats-server, loopback webhook receiver")
    print(summary("reference: webhook post", posts))
    print(summary("window: post answered->ledger", windows))
    ratio = windows.get_value_at_percentile(99) / posts.get_value_at_percentile(99)
    met = round(ratio, 2) <= args.target  # judged on the figure printed
    print(f"{NAME}: ratio {ratio:.2f} (target {args.target}): {'met' if met else 'missed'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
