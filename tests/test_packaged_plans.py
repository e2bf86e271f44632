"""The plans golive ships live once, in golive/plans/, and travel as package data: `golive demo` and the plans
`golive up` names resolve from a directory outside the repository, and a built wheel carries them."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

from golive import plans
from golive.shared.plan import load_plan
from golive.stack.up import ready_message
from tests.harness import REPO, build_wheel, run_cli

SHIPPED = ("skeleton.yaml", "supabase-golive.yaml")


def test_the_demo_reads_its_runbook_plan_from_any_directory(tmp_path):
    # --from-stage past the last stage: the demo refuses it after reading and checking its plan, before any server starts
    result = run_cli("demo", "--bad-canary", "errors", "--from-stage", "99", env=dict(os.environ), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{plans.RUNBOOK}:" not in result.stderr  # a plan problem names the file
    stages = len(load_plan(plans.RUNBOOK).canary.stages)
    assert f"--from-stage 99: the plan has {stages} stages" in result.stderr


def test_the_plans_golive_up_names_are_absolute_and_valid_from_any_directory(tmp_path):
    named = [Path(p) for p in re.findall(r"`golive run ([^`\s]+)", ready_message())]
    assert named == [plans.SKELETON, plans.RUNBOOK]
    for plan in named:
        assert plan.is_absolute()
        checked = run_cli("plan", "check", str(plan), env=dict(os.environ), cwd=tmp_path)
        assert checked.returncode == 0, checked.stderr


def test_the_shipped_plans_are_the_only_plan_files_in_the_repository():
    found = []
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in ("build", "artifacts")]
        found += [(Path(folder) / f).relative_to(REPO).as_posix() for f in files
                  if f.endswith(".yaml") and "plans" in Path(folder).relative_to(REPO).parts]
    assert sorted(found) == [f"golive/plans/{name}" for name in SHIPPED]


def test_a_built_wheel_installs_only_the_golive_namespace(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {name.split("/")[0] for name in names} == {"golive", "golive-0.1.0.dist-info"}
    # every module of the repository's shared/ and services/ travels, as golive.shared and golive.services
    for folder in ("shared", "services"):
        modules = {f"golive/{p.relative_to(REPO).as_posix()}" for p in (REPO / folder).rglob("*.py")}
        assert len(modules) > 20 and modules <= names, sorted(modules - names)


def test_a_built_wheel_carries_the_plans_and_the_console_script(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in SHIPPED:
            assert archive.read(f"golive/plans/{name}") == (plans.FOLDER / name).read_bytes(), name
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "golive = golive.cli.app:main" in archive.read(entry_points).decode()
    assert {"golive/cli/app.py", "golive/client.py", "golive/stack/up.py", "golive/demo/app.py"} <= names
