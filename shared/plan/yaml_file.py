"""Plan files read as YAML within fixed bounds, whatever the file holds.

A plan is small (the runbook's is about 10 KiB), so a file over ``MAX_PLAN_BYTES`` is refused before it is
parsed. Anchors and aliases are refused outright: no plan needs them, and an alias is how a few hundred bytes
expand to billions of values (a "billion laughs") once the plan is validated, serialised or sent on the bus.
Nesting deeper than ``MAX_NESTING`` is refused too (a plan is a few levels deep; a parser recurses per level).
The checks run on the parser's event stream, before any node is built, and each refusal names the path and
the line. Only then is the document composed (for lines) and constructed, with the safe loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from golive.shared.plan.base import path_text
from golive.shared.plan.problems import PlanProblem

MAX_PLAN_BYTES = 1 << 20  # 1 MiB
MAX_NESTING = 32

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: the same events, faster


class UnsafeYaml(ValueError):
    """A plan file refused before it is built: ``found`` says where and why (without the file)."""

    def __init__(self, reason: str, where: list[str | int] | None = None, line: int | None = None) -> None:
        self.found = PlanProblem(path_text(where) if where is not None else "", reason, line)
        super().__init__(str(self.found))


def read_plan_file(path: Path) -> str:
    """The file's text; UnsafeYaml if it is over ``MAX_PLAN_BYTES`` (never read further than that); OSError."""
    with path.open("rb") as f:
        raw = f.read(MAX_PLAN_BYTES + 1)
    if len(raw) > MAX_PLAN_BYTES:
        raise UnsafeYaml(_too_big(path.stat().st_size if path.is_file() else None))
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise UnsafeYaml(f"not UTF-8 text (byte {exc.start})") from None


def load_yaml(text: str) -> tuple[object, yaml.Node | None]:
    """The document and its node tree (for lines); UnsafeYaml for a hostile one, yaml.YAMLError for invalid YAML."""
    size = len(text.encode())
    if size > MAX_PLAN_BYTES:
        raise UnsafeYaml(_too_big(size))
    _refuse_hostile_structure(text)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


def _too_big(size: int | None) -> str:
    shown = f"{size:,} bytes" if size is not None else "more than that"
    return f"the plan file is {shown}; a plan file may be at most 1 MiB ({MAX_PLAN_BYTES:,} bytes)"


def _refuse_hostile_structure(text: str) -> None:
    """Walk the parser's events with the path of each node: refuse an anchor, an alias or deep nesting."""
    stack: list[list[Any]] = []  # per open collection: [path, "seq", next index] or [path, "map", key or None, expecting key]
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            stack.pop()
            continue
        if not isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)):
            continue
        path = _place(stack, event)
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
            what = "an alias" if isinstance(event, yaml.AliasEvent) else "an anchor"
            raise UnsafeYaml(f"{what}: YAML anchors and aliases are not allowed in a plan (an alias can expand to "
                             "billions of values); write the value out", path, line)
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(stack) >= MAX_NESTING:
                raise UnsafeYaml(f"nested more than {MAX_NESTING} levels deep; a plan is a few levels deep", path, line)
            stack.append([path, "seq", 0] if isinstance(event, yaml.SequenceStartEvent) else [path, "map", None, True])


def _place(stack: list[list[Any]], event: yaml.Event) -> list[str | int]:
    """The path of the node ``event`` starts, advancing its parent's position."""
    if not stack:
        return []
    parent = stack[-1]
    if parent[1] == "seq":
        parent[2] += 1
        return [*parent[0], parent[2] - 1]
    if parent[3]:  # a key: located at its mapping; the value after it gets its name
        parent[2] = event.value if isinstance(event, yaml.ScalarEvent) else "?"
        parent[3] = False
        return list(parent[0])
    parent[3] = True
    return [*parent[0], parent[2]]
