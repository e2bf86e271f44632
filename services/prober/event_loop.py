"""The prober's event loop: uvloop where it is installed (every platform but Windows), else asyncio's.

A probe's maximum rate is bounded by the CPU its loop spends per request (the driver waits on a socket,
wakes, parses; the open loop hands due times over from its thread): uvloop spends about a fifth less per
sql request than asyncio's selector loop (bench/prober_vs_pgbench.py runs the prober side on this loop too).
"""

from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop for the prober: uvloop's if it can be imported, else asyncio's default."""
    try:
        import uvloop
    except ImportError:  # Windows: uvloop has no build there
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
