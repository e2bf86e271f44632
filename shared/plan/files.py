"""Plan files: read within bounds (yaml_file.py), upgraded from their version, validated; every problem named by
its path and line: ``canary.stages[2].weight (line 31): 40 is not higher than the previous stage (50); weights
must increase and end at 100``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shared.plan.base import Problem, path_text
from shared.plan.plan import Plan
from shared.plan.probes import KINDS
from shared.plan.yaml_file import UnsafeYaml, load_yaml, read_plan_file
from shared.plan_versions import PlanVersionError, upgrade_plan

# lists whose items are told apart by a tag (a preflight check or gate, a probe's kind): the tag pydantic puts
# in an error's path is no key of the file
_TAGGED = {"preflight": {"check", "gate"}, "probes": set(KINDS)}


class PlanError(ValueError):
    """An invalid plan: every problem with its path, line and reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_plan(path: Path) -> Plan:
    """Read and validate a plan file; raise PlanError listing every problem."""
    return load_plan_with_lines(path)[0]


def load_plan_with_lines(path: Path) -> tuple[Plan, Callable[[list[str | int]], int | None]]:
    """The valid plan in ``path`` and the line of a path in it (``["notifications", "templates", "x"]`` -> 12),
    for checks that run after validation; PlanError listing every problem. The file is read and parsed within
    bounds (yaml_file: at most 1 MiB, no aliases, no deep nesting) whatever it holds."""
    try:
        text = read_plan_file(path)
    except OSError as exc:
        raise PlanError([f"{path}: cannot read: {exc.strerror}"]) from None
    except UnsafeYaml as exc:
        raise PlanError([f"{path}: {exc.problem}"]) from None
    plan, root = _parse(text, str(path))
    return plan, lambda loc: _line_of(root, list(loc))


def parse_plan(text: str, origin: str = "<plan>") -> Plan:
    """Validate plan YAML text; PlanError on any problem."""
    return _parse(text, origin)[0]


def _parse(text: str, origin: str) -> tuple[Plan, yaml.Node | None]:
    try:
        data, root = load_yaml(text)
    except UnsafeYaml as exc:
        raise PlanError([f"{origin}: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise PlanError([f"{origin}: not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise PlanError([f"{origin}: a plan is a YAML mapping"])
    try:
        data = upgrade_plan(data)
    except PlanVersionError as exc:
        raise PlanError([f"{_where(['version'], root)}: {exc}"]) from None
    try:
        return Plan.model_validate(data), root
    except ValidationError as exc:
        raise PlanError([_describe(err, root) for err in exc.errors()]) from None


def _describe(err: ErrorDetails, root: yaml.Node | None) -> str:
    loc = [p for i, p in enumerate(err["loc"]) if not (i == 2 and p in _TAGGED.get(str(err["loc"][0]), ()))]
    message = err["msg"].removeprefix("Value error, ")
    problem = err.get("ctx", {}).get("error")
    if isinstance(problem, Problem):  # found by a model's own validator: point at the value, not the model
        loc += problem.where
        message = problem.reason
    return f"{_where(loc, root)}: {message}"


def _where(loc: list[str | int], root: yaml.Node | None) -> str:
    path = path_text(loc)
    line = _line_of(root, loc)
    return f"{path} (line {line})" if line else path


def _line_of(node: yaml.Node | None, loc: list[str | int]) -> int | None:
    """Line of the deepest YAML node that ``loc`` reaches (1-based)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
