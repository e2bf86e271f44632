"""Run ids and deployment ids match one strict pattern, checked before anything touches the bus or the disk
(issue 12, finding 7): a bad id is a clear refusal with exit 2, nothing published, no file outside artifacts/."""

from __future__ import annotations

import asyncio
import json
import os

import nats
import pytest
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from golive.plans import SKELETON
from golive.services.coordinator.artifacts import OutsideArtifacts, run_directory
from golive.shared.bus import connect_options
from golive.shared.commands import ShiftTraffic, StartRun
from golive.shared.envelope import ParseError, new_envelope, parse_envelope
from golive.shared.events import PhaseStarted
from golive.shared.ids import InvalidId, check_id
from tests.harness import run_cli

BAD_IDS = ["../../x", "/tmp/golive-abs-run", "a.b", "a b", "*", ">", "-starts-with-dash", "x" * 65, "", "run\n"]


def cli_env(settings) -> dict[str, str]:
    return {**os.environ, "GOLIVE_NATS_URL": settings.resolved_nats_url(), "GOLIVE_SUBJECT_ROOT": settings.subject_root,
            "GOLIVE_STATE_DIR": str(settings.state_dir), "GOLIVE_ARTIFACTS_DIR": str(settings.artifacts_dir)}


async def _published(settings) -> int:
    """Messages in this test's command and event streams (0 when they were never even created)."""
    nc = await nats.connect(**await connect_options(settings))
    try:
        js = nc.jetstream()
        total = 0
        for stream in (settings.subjects.command_stream, settings.subjects.event_stream):
            try:  # by name: the list of all streams is paged, and the suite's server holds hundreds
                total += (await js.stream_info(stream)).state.messages
            except NotFoundError:
                continue
        return total
    finally:
        await nc.close()


def _assert_refused(result, what: str = "run id") -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert f"{what} " in result.stderr and "letters, digits" in result.stderr, result.stderr


@pytest.mark.parametrize("run_id", ["../../x", "/tmp/golive-abs-run", "a.b.c", "x" * 65])
def test_run_refuses_a_bad_run_id_before_the_bus(settings, run_id):
    result = run_cli("run", str(SKELETON), "--run-id", run_id, env=cli_env(settings))

    _assert_refused(result)
    assert asyncio.run(_published(settings)) == 0  # nothing left in the command stream


@pytest.mark.parametrize("option", ["--deploy-id", "--previous-deploy-id"])
def test_run_refuses_a_bad_deployment_id_before_the_bus(settings, option):
    result = run_cli("run", str(SKELETON), "--run-id", "run-ok", option, "../../x",
                     env=cli_env(settings))

    _assert_refused(result, "deployment id")
    assert asyncio.run(_published(settings)) == 0


COMMANDS = [
    ("abort", "{run}", "--reason", "r"), ("approve", "{run}"), ("pause", "{run}", "--reason", "r"),
    ("continue", "{run}"), ("retry", "{run}"), ("resume", "{run}", "--no-wait"), ("status", "{run}"),
    ("watch", "{run}"), ("events", "--run", "{run}"), ("report", "{run}"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_refuses_a_bad_run_id_without_a_traceback(settings, command):
    run_id = "../../golive-escaped"
    result = run_cli(*(a.format(run=run_id) for a in command), env=cli_env(settings))

    _assert_refused(result)
    assert asyncio.run(_published(settings)) == 0
    assert not (settings.artifacts_dir / run_id).resolve().exists()


def test_report_of_an_absolute_run_id_writes_nothing_outside_artifacts(settings, tmp_path):
    outside = tmp_path / "outside"
    result = run_cli("report", str(outside), env=cli_env(settings))

    _assert_refused(result)
    assert not outside.exists()


@pytest.mark.parametrize("run_id", BAD_IDS)
def test_the_artifacts_folder_of_a_bad_run_id_is_refused(tmp_path, run_id):
    with pytest.raises(InvalidId):
        run_directory(tmp_path / "artifacts", run_id)


def test_an_artifacts_folder_that_resolves_outside_is_refused(tmp_path):
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "run-linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)

    with pytest.raises(OutsideArtifacts):
        run_directory(artifacts, "run-linked")
    assert run_directory(artifacts, "run-1") == artifacts / "run-1"


@pytest.mark.parametrize("run_id", BAD_IDS)
def test_a_message_with_a_bad_run_id_does_not_parse(run_id):
    good = new_envelope(PhaseStarted(phase="migrate", step="migrate"), id="e1", source="/golive/coordinator",
                        runid="run-1")
    body = json.loads(good.to_json())
    body["runid"] = run_id

    with pytest.raises(ParseError):
        parse_envelope(json.dumps(body).encode())


@pytest.mark.parametrize("deploy_id", ["../x", "a.b", "", "x" * 65])
def test_commands_refuse_a_bad_deployment_id(deploy_id):
    with pytest.raises(ValidationError):
        StartRun(plan={}, deploy_id=deploy_id)
    with pytest.raises(ValidationError):
        ShiftTraffic(provider={"type": "dry-run"}, canary=deploy_id, weight=10)


@pytest.mark.parametrize("good", ["run-20261123-021500-3fa9c1", "dpl_89qyp1cskzkLrVicDaZoDbjyHuDJ", "r", "x" * 64])
def test_the_ids_golive_and_its_providers_make_are_valid(good):
    assert check_id(good) == good


def test_generated_run_ids_are_valid():
    from golive.client import new_run_id

    run_id = new_run_id()
    assert check_id(run_id) == run_id
