"""Plan files: read within bounds (yaml_file.py), upgraded from their version, validated; every problem named by
its file, line and path, in words (problems.py): ``plans/checkout.yaml:31: canary.stages[2].weight: 40 is not
higher than the previous stage (50); weights must increase and end at 100``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from golive.shared.plan.base import Problem, path_text
from golive.shared.plan.plan import Plan
from golive.shared.plan.probes import KINDS
from golive.shared.plan.problems import PlanError, PlanProblem, plain_reason
from golive.shared.plan.yaml_file import UnsafeYaml, load_yaml, read_plan_file
from golive.shared.plan_versions import PlanVersionError, upgrade_plan

# lists whose items are told apart by a tag (a preflight check or gate, a probe's kind): the tag pydantic puts
# in an error's path is no key of the file
_TAGGED = {"preflight": {"check", "gate"}, "probes": set(KINDS)}


def load_plan(path: Path) -> Plan:
    """Read and validate a plan file; raise PlanError listing every problem."""
    return load_plan_with_lines(path)[0]


def load_plan_with_lines(path: Path) -> tuple[Plan, Callable[[list[str | int]], int | None]]:
    """The valid plan in ``path`` and the line of a path in it (``["notifications", "templates", "x"]`` -> 12),
    for checks that run after validation; PlanError listing every problem, each as ``FILE:LINE: path: reason``.
    The file is read and parsed within bounds (yaml_file: at most 1 MiB, no aliases, no deep nesting) whatever
    it holds."""
    origin = str(path)
    try:
        text = read_plan_file(path)
    except OSError as exc:
        raise PlanError([PlanProblem("", f"cannot read: {exc.strerror}")], origin) from None
    except UnsafeYaml as exc:
        raise PlanError([exc.found], origin) from None
    plan, root = _parse(text, origin)
    return plan, lambda loc: _line_of(root, list(loc))


def parse_plan(text: str, origin: str | None = None) -> Plan:
    """Validate plan YAML text; PlanError on any problem (``origin``: the file it came from, named in each)."""
    return _parse(text, origin)[0]


def _parse(text: str, origin: str | None) -> tuple[Plan, yaml.Node | None]:
    try:
        data, root = load_yaml(text)
    except UnsafeYaml as exc:
        raise PlanError([exc.found], origin) from None
    except yaml.YAMLError as exc:
        raise PlanError([_not_yaml(exc)], origin) from None
    if not isinstance(data, dict):
        raise PlanError([PlanProblem("", "a plan is a YAML mapping (lines of 'key: value')")], origin)
    try:
        data = upgrade_plan(data)
    except PlanVersionError as exc:
        raise PlanError([PlanProblem("version", str(exc), _line_of(root, ["version"]))], origin) from None
    try:
        return Plan.model_validate(data), root
    except ValidationError as exc:
        found = [_described(err, root) for err in exc.errors()]
        raise PlanError(sorted(found, key=lambda p: p.line or 0), origin) from None  # in the file's order


def _not_yaml(exc: yaml.YAMLError) -> PlanProblem:
    """Invalid YAML in the parser's words, at its line (the parser's own text names no file, or a placeholder)."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return PlanProblem("", f"not valid YAML: {exc}")
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    words = exc.problem or "cannot be read"
    if exc.context:
        opened = exc.context_mark
        where = f" (opened on line {opened.line + 1})" if opened is not None and opened.line + 1 != line else ""
        words = f"{words}, {exc.context}{where}"
    column = f" at column {mark.column + 1}" if mark is not None else ""
    return PlanProblem("", f"not valid YAML{column}: {words}", line)


def _described(err: ErrorDetails, root: yaml.Node | None) -> PlanProblem:
    raw = list(err["loc"])
    loc = [p for i, p in enumerate(raw) if not (i == 2 and p in _TAGGED.get(str(raw[0]), ()))]
    reason = plain_reason(err, Plan, raw)
    problem = err.get("ctx", {}).get("error")
    if isinstance(problem, Problem):  # found by a model's own validator: point at the value, not the model
        loc += problem.where
        reason = problem.reason
    return PlanProblem(path_text(loc), reason, _line_of(root, loc, key_line=err["type"] == "extra_forbidden"))


def _line_of(node: yaml.Node | None, loc: list[str | int], key_line: bool = False) -> int | None:
    """Line of the deepest YAML node that ``loc`` reaches (1-based); ``key_line``: of the last key itself, not
    of its value (an unknown key's value may start lines below it)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == key), None)
            if pair is not None and key_line and key == loc[-1]:
                return int(pair[0].start_mark.line) + 1
            node = pair[1] if pair is not None else None
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
