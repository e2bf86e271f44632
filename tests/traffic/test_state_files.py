"""Files that concurrent writers replace: the dry-run provider's weights, each whole and none lost, whether the writes
come from threads of one traffic service (a rollback landing while a shift's write is in flight) or from several."""

from __future__ import annotations

import asyncio
import json
import threading

from golive.services.traffic.dry_run import DryRunProvider
from golive.shared.replace_file import replace_whole


async def test_concurrent_shifts_of_different_canaries_are_each_kept(tmp_path):
    provider = DryRunProvider(tmp_path / "traffic-dry-run.json")
    canaries = [f"dpl_{n}" for n in range(24)]
    await asyncio.gather(*(provider.set_weight(canary, "dpl_old", 10 + n) for n, canary in enumerate(canaries)))
    assert [await provider.weight(canary) for canary in canaries] == [10 + n for n in range(24)]


def test_writers_in_many_threads_each_replace_the_file_whole(tmp_path):
    path, failures = tmp_path / "state.json", []

    def write(n: int) -> None:
        try:
            for i in range(150):
                replace_whole(path, json.dumps({"writer": n, "i": i, "pad": "x" * 4096}))
        except Exception as exc:  # a writer that tripped over another's temporary file
            failures.append(exc)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert failures == []
    assert json.loads(path.read_text())["i"] == 149  # whole: the last write of some writer
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind
