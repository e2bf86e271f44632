"""A plan's problems in a plan author's words: where (the file, its line, the path in the plan) and why.

A plan file's problem reads as a compiler's does, so an editor or a terminal jumps to it:
``plans/checkout.yaml:31: canary.stages[2].weight: 40 is not higher than the previous stage (50)``. Pydantic's
own messages ("Extra inputs are not permitted", "Input should be a valid integer") are put in plain words
here, and an unknown key names the key it most likely meant (``unknown key 'treshold'; did you mean
'thresholds'?``), from the keys the plan's model takes at that place.
"""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag
from pydantic_core import ErrorDetails


@dataclass(frozen=True)
class PlanProblem:
    """One problem: ``where`` in the plan (``canary.stages[2].weight``; empty: the file as a whole), the 1-based
    ``line`` of the file it is on (None: not known) and the ``reason``, in words."""

    where: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        at = f" (line {self.line})" if self.line else ""
        return f"{self.where}{at}: {self.reason}" if self.where else f"{self.reason}{at}"

    def in_file(self, file: str) -> str:
        """``FILE:LINE: where: reason``, as compilers say it (``FILE: ...`` when the line is not known)."""
        at = f"{file}:{self.line}" if self.line else file
        return f"{at}: {self.where}: {self.reason}" if self.where else f"{at}: {self.reason}"


class PlanError(ValueError):
    """An invalid plan: every problem with its path, line and reason. ``problems``: each as a line to print
    (``FILE:LINE: path: reason`` when the plan came from a file); ``found``: the same as PlanProblems."""

    def __init__(self, found: list[PlanProblem], origin: str | None = None) -> None:
        self.found = found
        self.origin = origin
        self.problems = [p.in_file(origin) if origin else str(p) for p in found]
        super().__init__("\n".join(self.problems))


# pydantic's error types in words; "{x}" is filled from the error's context
_WORDS: dict[str, str] = {
    "missing": "missing (required)",
    "int_type": "should be a whole number",
    "int_parsing": "should be a whole number",
    "int_from_float": "should be a whole number",
    "float_type": "should be a number",
    "float_parsing": "should be a number",
    "bool_type": "should be true or false",
    "bool_parsing": "should be true or false",
    "string_type": "should be text",
    "list_type": "should be a list (lines starting with '- ')",
    "dict_type": "should be a mapping (lines of 'key: value')",
    "model_type": "should be a mapping (lines of 'key: value')",
    "model_attributes_type": "should be a mapping (lines of 'key: value')",
    "string_too_short": "should not be empty",
    "greater_than": "should be greater than {gt}",
    "greater_than_equal": "should be at least {ge}",
    "less_than": "should be less than {lt}",
    "less_than_equal": "should be at most {le}",
    "literal_error": "should be {expected}",
    "too_long": "may have at most {max_length} items",
    "too_short": "needs at least {min_length} items",
    "string_pattern_mismatch": "does not have the expected form",
}


def plain_reason(error: ErrorDetails, model: type[BaseModel], loc: list[str | int]) -> str:
    """Why pydantic refused the value at ``loc`` (a path in ``model``, tags of tagged unions left out), in
    words: an unknown key with the known key it most likely meant, a wrong type as what it should be."""
    kind = error["type"]
    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        known = keys_at(model, loc[:-1])
        near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else (f" (known here: {', '.join(sorted(known))})" if known else "")
        return f"unknown key {key!r}{hint}"
    words = _WORDS.get(kind)
    if words is not None:
        try:
            return words.format(**error.get("ctx", {}))
        except (KeyError, IndexError):
            pass
    message = error["msg"].removeprefix("Value error, ")
    return message.replace("Input should be", "should be", 1)


def keys_at(model: type[BaseModel], loc: list[str | int]) -> list[str]:
    """The keys the plan takes at ``loc`` (a mapping's path in ``model``), as a plan spells them; [] if unknown."""
    found: Any = model
    for key in loc:
        found = _inside(found, key)
        if found is None:
            return []
    found = _model_of(found)
    if found is None:
        return []
    return [info.alias or name for name, info in found.model_fields.items()]


def _inside(annotation: Any, key: str | int) -> Any:
    """The type of the value at ``key`` in a value of type ``annotation`` (None: not known)."""
    annotation = _unwrapped(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if key in (name, info.alias):
                return info.annotation
        return None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        tagged = [a for a in args if _tag(a) == key]
        if tagged:  # a tagged union's tag in the path: the member it names
            return tagged[0]
        inside = [t for a in args if (t := _inside(a, key)) is not None]
        return inside[0] if inside else None
    if origin in (list, tuple, set, frozenset) and isinstance(key, int) and args:
        return args[0]
    if origin is dict and isinstance(key, str) and len(args) == 2:
        return args[1]
    return None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrapped(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        models = [m for a in get_args(annotation) if (m := _model_of(a)) is not None]
        return models[0] if len(models) == 1 else None
    return None


def _unwrapped(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _tag(annotation: Any) -> str | None:
    if get_origin(annotation) is Annotated:
        return next((m.tag for m in annotation.__metadata__ if isinstance(m, Tag)), None)
    return None
