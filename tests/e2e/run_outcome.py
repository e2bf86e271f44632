"""What a run left behind, read back from the real servers an end-to-end test started: its events on the stream,
an index's state in PostgreSQL, the weights the dry-run traffic provider holds."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from contextlib import aclosing
from datetime import timedelta

import nats
import psycopg
from rich.console import Console

from golive.shared.envelope import Envelope
from golive.shared.event_log import read_events
from golive.views.live import LiveView, fold, render


def run_events(settings, run_id: str) -> list[Envelope]:
    """Every event of run ``run_id`` on the stream, in stream order."""
    async def collect() -> list[Envelope]:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            async with aclosing(read_events(nc.jetstream(), settings.subjects.events_of_run(run_id))) as feed:
                return [envelope async for _seq, envelope in feed]
        finally:
            await nc.close()

    return asyncio.run(collect())


def wire_headers(settings, run_id: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(envelope id, header lines as stored) of every event of ``run_id``, read with JetStream's message-get API,
    which returns the raw header block: a client's header dict would fold two lines of one name into one."""
    async def collect() -> list[tuple[str, list[tuple[str, str]]]]:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            js = nc.jetstream()
            subject = settings.subjects.events_of_run(run_id)
            stream = await js.find_stream_name_by_subject(subject)
            found = []
            async with aclosing(read_events(js, subject)) as feed:
                async for seq, envelope in feed:
                    answer = await nc.request(f"$JS.API.STREAM.MSG.GET.{stream}", json.dumps({"seq": seq}).encode(),
                                              timeout=10)
                    block = base64.b64decode(json.loads(answer.data)["message"].get("hdrs", "")).decode()
                    lines = [line.split(":", 1) for line in block.split("\r\n")[1:] if line]
                    found.append((envelope.id, [(name, value.strip()) for name, value in lines]))
            return found
        finally:
            await nc.close()

    return asyncio.run(collect())


def index_state(database_url: str, name: str):
    """(indisvalid, indisready) of index ``name``, or None when there is no such index."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT i.indisvalid, i.indisready FROM pg_index i WHERE i.indexrelid = to_regclass(%s)", (name,)
        ).fetchone()


def dry_run_weights(settings) -> dict:
    """What the dry-run traffic provider holds: each canary deployment's weight and stable deployment."""
    return json.loads((settings.state_dir / "traffic-dry-run.json").read_text())


def panel_at_end(settings, run_id: str) -> str:
    """The live panel of `golive run` on a terminal (golive/views/live.py) once it folded every event of the run,
    as plain text, a second after the last one."""
    events = run_events(settings, run_id)
    view = LiveView()
    for envelope in events:
        view = fold(view, envelope)
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render(view, events[-1].time + timedelta(seconds=1)))
    return console.file.getvalue()
