"""Templates rendered within bounds, whatever they do: the one renderer of `golive plan check` and the notifier.

A plan's templates are untrusted code. Jinja2's sandbox stops them from reaching Python's internals, but not
from looping for ever (``range(100000)`` inside ``range(100000)``), recursing (``loop()`` of a recursive
loop, a macro calling itself twice) or building huge values (``'x' * 1000000000``, ``'x' | center(10**9)``,
``ns.s ~ ns.s`` forty times). ``BoundedEnvironment`` adds, per render:

- a step budget: every call, attribute or item read, operator, filter and loop turn is a step, and the
  render is refused past ``MAX_STEPS`` steps or ``MAX_SECONDS`` seconds (so no loop and no recursion runs on);
- a size limit checked *before* a value is built: ``*``, ``+``, ``**``, ``%``, ``~``, the str methods and
  filters that pad, repeat or replace, and ``lipsum``, refuse a result over ``MAX_VALUE`` characters or items;
- an output limit: the text is streamed (``Template.generate``) and refused past ``MAX_OUTPUT`` characters.

A refusal is RenderRefused, which says what was cut off and why.
"""

from __future__ import annotations

import math
import re
import string
import time
from contextvars import ContextVar
from functools import wraps
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

MAX_STEPS = 100_000
MAX_SECONDS = 1.0
MAX_VALUE = 100_000  # characters of a string, items of a list, a value a template builds may have
MAX_OUTPUT = 64_000  # characters of a rendered template (Slack cuts a message's text at 40,000)
MAX_INT_BITS = 64_000

_WIDTHS = re.compile(r"\d+")
_PADDING_METHODS = {"center", "ljust", "rjust", "zfill"}
_SIZING_FILTERS = {"center", "indent", "wordwrap", "truncate", "batch", "slice", "format", "lipsum"}


class RenderRefused(ValueError):
    """A render cut off at a limit; the text says which limit and why."""


class _Budget:
    def __init__(self) -> None:
        self.steps = MAX_STEPS
        self.deadline = time.monotonic() + MAX_SECONDS

    def step(self, n: int = 1) -> None:
        self.steps -= n
        if self.steps < 0:
            raise RenderRefused(f"cut off after {MAX_STEPS:,} steps (a loop or a recursion that does not end?)")
        if time.monotonic() > self.deadline:
            raise RenderRefused(f"cut off after {MAX_SECONDS:g} s")


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _step(n: int = 1) -> None:
    budget = _budget.get()
    if budget is None:
        raise RenderRefused("templates render through render_bounded only")
    budget.step(n)


def _refuse_size(size: int, what: str) -> None:
    if size > MAX_VALUE:
        raise RenderRefused(f"{what} would have {size:,} characters or items; a template's values may have at most "
                            f"{MAX_VALUE:,}")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple, bytes)) else 0


def _check_int(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_VALUE:
        raise RenderRefused(f"{value if value.bit_length() < 64 else 'a number'} is over {MAX_VALUE:,}, the largest "
                            "width, count or size a template may ask for")


def _counted(iterable: Any):
    """An iterable whose every turn is a step: a for loop over it cannot run on."""
    for item in iterable:
        _step()
        yield item


def _range(*args: int):
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise RenderRefused(f"range of {len(numbers):,} items; at most {MAX_RANGE:,}")
    return _counted(numbers)


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002 (jinja's names)
    _refuse_size(n * max * 16, "lipsum")
    _step(n * max)
    return generate_lorem_ipsum(n, html, min, max)


def _concat(*parts: Any) -> str:
    texts = [str(p) for p in parts]
    _refuse_size(sum(len(t) for t in texts), "~")
    return "".join(texts)


def _percent_format(left: str, right: Any) -> None:
    # every width and precision of the format counts, together: many fields of a legal width add up
    _refuse_size(len(left) + sum(int(w) for w in _WIDTHS.findall(left)), "%")
    if "*" in left:  # widths taken from the values
        _refuse_size(sum(v for v in (right if isinstance(right, tuple) else (right,)) if isinstance(v, int)), "%")


def _format_spec_widths(text: str, args: tuple, kwargs: dict) -> None:
    specs = [spec or "" for _literal, _field, spec, _conversion in string.Formatter().parse(text)]
    _refuse_size(len(text) + sum(int(w) for spec in specs for w in _WIDTHS.findall(spec)), "format")
    if any("{" in spec for spec in specs):  # widths taken from the values
        _refuse_size(sum(v for v in (*args, *kwargs.values()) if isinstance(v, int)), "format")


def _bounded_filter(name: str, f):
    """A filter that is a step, asks for no huge width, and returns no huge value."""

    @wraps(f)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _step()
        if name in _SIZING_FILTERS:
            for value in (*args[1:], *kwargs.values()):
                _check_int(value)  # center(10**9), slice(10**9), ...
        if name == "indent" and args:
            width = args[1] if len(args) > 1 else kwargs.get("width", 4)
            pad = width if isinstance(width, int) else len(str(width))
            _refuse_size(len(str(args[0])) + (str(args[0]).count("\n") + 1) * pad, "indent")
        if name == "replace" and len(args) >= 3:
            source, old, new = (str(a) for a in args[:3])
            _refuse_size(len(source) + (source.count(old) if old else len(source) + 1) * len(new), "replace")
        result = f(*args, **kwargs)
        _refuse_size(_size(result), f"| {name}")
        return result

    return bounded


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame) -> None:  # noqa: N802 (jinja's visitor names)
        # `a ~ b` is joined by environment.concat_bounded, which checks the size first (Jinja's str_join does not)
        self.write("environment.concat_bounded(")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with a step budget, value sizes checked before they are built, and counted
    loops (see the module's docstring). Render with ``render_bounded``."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//", "/", "-"})
    intercepted_unops = frozenset({"-", "+"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
        self.globals["range"] = _range
        self.globals["lipsum"] = _lipsum
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.counted = _counted  # reached by compiled templates as environment.counted
        self.concat_bounded = _concat
        self.code_generator_class = _BoundedCodeGenerator

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # every for loop iterates through `counted`: a loop turn is a step, whatever it iterates
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.EnvironmentAttribute("counted"), [loop.iter], [], None, None,
                                   lineno=loop.lineno)
        return tree

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        _step()
        if operator == "*":
            if _size(left) or _size(right):
                count = right if _size(left) else left
                if isinstance(count, int):
                    _refuse_size(max(_size(left), _size(right)) * count, "*")
            elif isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise RenderRefused(f"a number of more than {MAX_INT_BITS:,} bits")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if right * math.log2(abs(left)) > MAX_INT_BITS:
                raise RenderRefused(f"a number of more than {MAX_INT_BITS:,} bits")
        elif operator == "+" and _size(left) and _size(right):
            _refuse_size(_size(left) + _size(right), "+")
        elif operator == "%" and isinstance(left, str):
            _percent_format(left, right)
        return super().call_binop(context, operator, left, right)

    def call_unop(self, context, operator: str, arg: Any) -> Any:
        _step()
        return super().call_unop(context, operator, arg)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _step()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _step()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any):
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        text = value.__self__

        @wraps(wrapper)
        def bounded(*args: Any, **kwargs: Any) -> str:
            _format_spec_widths(text, args, kwargs)
            result = wrapper(*args, **kwargs)
            _refuse_size(len(result), "format")
            return result

        return bounded

    def call(__self, __context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (jinja's signature)
        _step()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str) and callable(__obj):
            method = getattr(__obj, "__name__", "")
            if method in _PADDING_METHODS or method == "expandtabs":
                for value in (*args, *kwargs.values()):
                    _check_int(value)
                if method == "expandtabs":
                    tabsize = args[0] if args else kwargs.get("tabsize", 8)
                    _refuse_size(len(owner) * max(1, tabsize if isinstance(tabsize, int) else 1), "expandtabs")
            elif method == "replace" and len(args) >= 2:
                old, new = str(args[0]), str(args[1])
                _refuse_size(len(owner) + (owner.count(old) if old else len(owner) + 1) * len(new), "replace")
            elif method == "join" and args:
                parts = list(_counted(args[0]))
                _refuse_size(sum(_size(p) for p in parts) + len(owner) * len(parts), "join")
                args = (parts, *args[1:])
        result = super().call(__context, __obj, *args, **kwargs)
        _refuse_size(_size(result), "a call")
        return result


_ENV = BoundedEnvironment()


def render_bounded(source: str, context: dict[str, Any]) -> str:
    """``source`` rendered with ``context`` within the limits (stripped); RenderRefused at a limit, and any
    error the template itself raises (a misspelt name under StrictUndefined, 1 / 0, ...)."""
    token = _budget.set(_Budget())
    try:
        template = _ENV.from_string(source)
        size = 0
        parts = []
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise RenderRefused(f"output cut off at {MAX_OUTPUT:,} characters")
            parts.append(chunk)
            _step()
        return "".join(parts).strip()
    finally:
        _budget.reset(token)
