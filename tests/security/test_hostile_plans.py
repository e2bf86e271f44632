"""Plans written to exhaust the machine (issue 12, finding 5): `golive plan check` refuses each one with exit 2,
naming the file, the path and the line, in bounded CPU and memory.

Each check runs as its own process the way a user runs it. Its CPU is capped by RLIMIT_CPU (a hang is killed
and fails the test; no timing assertion), its address space by RLIMIT_AS (so the code before the fix dies
instead of eating a shared machine), and its peak memory (with every process it waited for) is read from
wait4's rusage.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.builders import SKELETON as SKELETON_FILE
from tests.harness import REPO
from tests.security.template_bombs import TEMPLATE_BOMBS

SKELETON = SKELETON_FILE.read_text()
MAX_RSS_MB = 300
CPU_SECONDS = 10

pytestmark = pytest.mark.timeout(120)


@dataclass
class Checked:
    returncode: int
    output: str
    max_rss_mb: float


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def plan_check(path: Path, tmp_path: Path) -> Checked:
    """`golive plan check PATH` in its own process, with its exit code, output and peak RSS."""
    out = tmp_path / "check.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "golive", "plan", "check", str(path)], cwd=REPO,
                                env=dict(os.environ), stdout=sink, stderr=subprocess.STDOUT, preexec_fn=_limits)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Checked(proc.returncode, out.read_text(errors="replace"), usage.ru_maxrss / 1024)


def assert_refused(checked: Checked, path: Path, where: str, line: int | None, *words: str) -> None:
    assert checked.returncode == 2, checked
    assert str(path) in checked.output, checked.output
    at = f"{path}:{line}: " if line else f"{path}: "
    expected = f"{at}{where}: " if where else at
    assert expected in checked.output, checked.output
    for word in words:
        assert word in checked.output, checked.output
    assert checked.max_rss_mb < MAX_RSS_MB, checked


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def laughs(indent: str, as_list: bool = False) -> str:
    """A billion laughs: nine levels of nine aliases each (9**9 strings once expanded)."""
    rows = [f'lol0: &lol0 [{", ".join(["lol"] * 9)}]']
    rows += [f'lol{i}: &lol{i} [{", ".join([f"*lol{i - 1}"] * 9)}]' for i in range(1, 9)]
    if as_list:
        rows = [f"- {r.split(': ', 1)[1]}" for r in rows]
    return "".join(f"{indent}{r}\n" for r in rows)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    return path


# where a billion laughs is planted in the skeleton: (the line it replaces, its indent, a list?, where it is refused,
# the line it is refused at)
ALIAS_BOMBS = {
    "provider extras": ("    type: dry-run                        # records weights in <state dir>/traffic-dry-run.json\n",
                        "    type: dry-run\n", "    ", False, "traffic.provider.lol0", "lol0:"),
    "probe params": ("    query: SELECT id, type FROM stripe_events ORDER BY created_at DESC LIMIT 10\n",
                     "    query: SELECT $1\n    params:\n", "      ", True, "probes.stripe_recent.params[0]", "&lol0"),
    "sink extras": ("      format: attachments                # the runbook's format; or blocks (Block Kit)\n",
                    "      format: attachments\n", "      ", False, "notifications.sinks.slack.lol0", "lol0:"),
}


@pytest.mark.parametrize("place", sorted(ALIAS_BOMBS))
def test_an_alias_bomb_is_refused_where_it_stands(tmp_path, place):
    original, kept, indent, as_list, where, marker = ALIAS_BOMBS[place]
    text = SKELETON.replace(original, kept + laughs(indent, as_list=as_list))
    path = write(tmp_path, text)
    assert_refused(plan_check(path, tmp_path), path, where, line_of(text, marker), "alias")


def test_a_merge_key_alias_is_refused_too(tmp_path):
    text = SKELETON.replace("timeouts:\n  step: 60s\n", "timeouts: &t\n  step: 60s\nretries:\n  <<: *t\n")
    path = write(tmp_path, text)
    assert_refused(plan_check(path, tmp_path), path, "timeouts", line_of(text, "timeouts:"), "anchor")


def test_a_deeply_nested_plan_is_refused(tmp_path):
    text = SKELETON.replace("    type: dry-run                        # records weights in <state dir>/traffic-dry-run.json\n",
                            "    type: dry-run\n    deep: " + "[" * 500 + "]" * 500 + "\n")
    path = write(tmp_path, text)
    assert_refused(plan_check(path, tmp_path), path, "traffic.provider.deep" + "[0]" * 29, line_of(text, "deep:"), "nested")


def test_a_plan_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path):
    statement = "    - name: s{0}\n      sql: CREATE INDEX CONCURRENTLY idx_s{0} ON stripe_events(created_at)\n"
    extra = "".join(statement.format(i) for i in range(40_000))  # about 4 MB, 40,000 index builds
    text = SKELETON.replace("  statements:\n", "  statements:\n" + extra)
    path = write(tmp_path, text)
    checked = plan_check(path, tmp_path)
    assert_refused(checked, path, "", None, "1 MiB")


@pytest.mark.parametrize(("section", "count"), [("statements", 500), ("probes", 500), ("stages", 200), ("sinks", 200)])
def test_a_plan_with_too_many_items_is_refused_at_the_list(tmp_path, section, count):
    plan = yaml.safe_load(SKELETON)
    if section == "statements":
        plan["migrations"]["statements"] = [
            {"name": f"s{i}", "sql": f"CREATE INDEX CONCURRENTLY idx_s{i} ON stripe_events(created_at)"}
            for i in range(count)]
        where, key = "migrations.statements", "statements:"
    elif section == "probes":
        plan["probes"].update({f"p{i}": {"query": "SELECT 1"} for i in range(count)})
        where, key = "probes", "probes:"
    elif section == "stages":
        plan["canary"]["stages"] = [{"weight": 1 + i * 99 // (count - 1), "hold": "1s"} for i in range(count)]
        where, key = "canary.stages", "stages:"
    else:
        plan["notifications"]["sinks"].update(
            {f"s{i}": {"type": "webhook", "webhook_url_env": "GOLIVE_SLACK_WEBHOOK_URL"} for i in range(count)})
        where, key = "notifications.sinks", "sinks:"
    text = yaml.safe_dump(plan, sort_keys=False, width=1000)
    path = write(tmp_path, text)
    assert_refused(plan_check(path, tmp_path), path, where, line_of(text, key) + 1, "at most")  # its first item


@pytest.mark.parametrize("name", sorted(TEMPLATE_BOMBS))
def test_a_template_that_would_exhaust_the_machine_is_refused(tmp_path, name):
    plan = yaml.safe_load(SKELETON)
    plan["notifications"]["templates"] = {"run_started": {"text": TEMPLATE_BOMBS[name]}}
    text = yaml.safe_dump(plan, sort_keys=False, width=1000)
    path = write(tmp_path, text)
    line = line_of(text, "text:")
    assert_refused(plan_check(path, tmp_path), path, "notifications.templates.run_started.text", line)
