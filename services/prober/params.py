"""Parameter generators of an sql probe: fixed values, a random row of a sampling query, a sequence."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

from golive.shared.plan.probes import FixedParams, SampledParams, SequenceParams

MAX_SAMPLED_ROWS = 100_000


class Params:
    """Draws the parameters of one request. Pure once built (a sampling query's rows are given to it)."""

    def __init__(self, spec: FixedParams | SampledParams | SequenceParams | None, fixed: Sequence[Any] = (),
                 rows: Sequence[Sequence[Any]] = (), seed: int | None = None) -> None:
        self._spec = spec
        self._fixed = tuple(fixed) or None
        self._rows = [tuple(r) for r in rows]
        self._random = random.Random(seed)
        if isinstance(spec, SampledParams) and not self._rows:
            raise ValueError("the sampling query returned no rows: there is nothing to draw parameters from")
        if isinstance(spec, SequenceParams):
            self._counter = itertools.count(spec.start, spec.step)
        if isinstance(spec, FixedParams):
            self._fixed = tuple(spec.values) or None

    def draw(self) -> tuple[Any, ...] | None:
        """The next request's parameters (None: the query takes none)."""
        if isinstance(self._spec, SampledParams):
            return self._random.choice(self._rows)
        if isinstance(self._spec, SequenceParams):
            n = next(self._counter)
            return tuple(_fill(item, n) for item in self._spec.template)
        return self._fixed


def _fill(item: Any, n: int) -> Any:
    if item == "{n}":
        return n
    if isinstance(item, str):
        return item.replace("{n}", str(n))
    return item
