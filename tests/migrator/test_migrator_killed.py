"""The migrator service process SIGKILLed mid-build and started again: JetStream redelivers the command,
the new process finds the index the dead one left, repairs it and finishes; exactly one valid index. While
the first build runs longer than ack_wait, in-progress acks keep JetStream from redelivering it.

The processes run golive's real migrator service with GOLIVE_COMMAND_ACK_WAIT_S=3 (the consumer's ack_wait),
the only change, so the redelivery comes in seconds rather than after the default 30 s.
"""

from __future__ import annotations

import asyncio

import nats

from golive.shared.bus import ensure_streams
from golive.shared.envelope import new_envelope, parse_envelope
from golive.shared.events import CommandFailed, MigrationsApplied
from golive.stack.process import stop_process
from golive.stack.service_processes import DATABASE_ENV, service_env
from tests.harness import record_run_started
from tests.migrator.migrator_db import build_pid, history_rows, index_rows
from tests.migrator.migrator_process import ACK_WAIT_S, APPLY, gone, start_migrator


async def test_migrator_killed_mid_build_is_redelivered_repaired_and_finished(
        settings, big_url, blocker, tmp_path):
    env = service_env(settings.resolved_nats_url(), settings.state_dir, {
        "GOLIVE_SUBJECT_ROOT": settings.subject_root, DATABASE_ENV: big_url, "GOLIVE_LOG_LEVEL": "INFO"})
    log = tmp_path / "migrator.log"
    await ensure_streams(settings)
    held = blocker()  # keeps the first build in 'waiting for old snapshots' until the kill
    procs = [start_migrator(env, log)]
    try:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            js = nc.jetstream()
            command = new_envelope(APPLY, id="run-kill.migrate", source="/tests", runid="run-kill")
            await record_run_started(js, settings.subjects, "run-kill")  # the migrator works only for a run
            await js.publish(settings.subjects.command("migrator", "apply"), command.to_json(),
                             stream=settings.subjects.command_stream, headers={"Nats-Msg-Id": command.id})
            pid = await asyncio.wait_for(build_pid(big_url), 60)
            await asyncio.sleep(2 * ACK_WAIT_S)  # a build longer than ack_wait ...
            consumer = await js.consumer_info(settings.subjects.command_stream, "migrator")
            assert consumer.num_redelivered == 0 and consumer.num_ack_pending == 1  # ... kept by in-progress acks
            procs[0].kill()  # SIGKILL: no ack, no nak, no cleanup
            procs[0].wait(timeout=10)
            await asyncio.wait_for(gone(big_url, pid), 30)  # the server stops the orphaned build
            assert index_rows(big_url)[0][:2] == ("idx_big_created", False)  # left invalid
            held.end()
            procs.append(start_migrator(env, log))
            results = await js.subscribe(settings.subjects.events_of_run("run-kill"), ordered_consumer=True)
            while True:
                answer = parse_envelope((await results.next_msg(timeout=60)).data)
                if isinstance(answer.data, (MigrationsApplied, CommandFailed)):
                    break
        finally:
            await nc.close()
    finally:
        for proc in procs:
            stop_process(proc, 15)
    assert isinstance(answer.data, MigrationsApplied), (answer.data, log.read_text()[-3000:])
    assert answer.correlationid == "run-kill.migrate"
    assert answer.data.results[0].action == "rebuilt_invalid"
    assert index_rows(big_url) == [("idx_big_created", True, True)]
    assert [r[:2] for r in history_rows(big_url, "big_created")] == [("apply", "failed"), ("apply", "succeeded")]
