"""The contracts as documented: every message type in docs/architecture.md, every type name versioned and unique."""

from __future__ import annotations

import re

import golive.shared.commands  # noqa: F401  (registers the command types)
import golive.shared.events  # noqa: F401  (registers the event types)
from golive.shared.envelope import registered_types
from golive.shared.subjects import SERVICES, Subjects
from tests.harness import REPO


def test_every_message_type_is_versioned_and_named_for_its_source():
    for name in registered_types():
        parts = name.split(".")
        assert parts[0] == "golive" and re.fullmatch(r"v\d+", parts[-1]), name
        if parts[1] == "cmd":
            assert parts[2] in SERVICES and len(parts) == 5, name
        else:
            assert parts[1] in (*SERVICES, "service") and len(parts) == 4, name


def test_the_architecture_page_lists_exactly_the_message_types_in_the_code():
    readme = REPO.joinpath("docs", "architecture.md").read_text()
    section = readme.split("Contracts (all in `shared/`)")[1].split("## ")[0]
    listed, family = set(), ""
    for token in re.findall(r"`([a-z_.0-9]+)`", section):
        if token.startswith("golive."):
            family = ".".join(token.split(".")[:-2])
            listed.add(token)
        else:
            listed.add(f"{family}.{token}")
    assert listed == set(registered_types())


def test_streams_are_defined_once_with_a_duplicate_window():
    configs = {c.name: c for c in Subjects("golive").stream_configs()}
    assert set(configs) == {"GOLIVE_CMD", "GOLIVE_EVT", "GOLIVE_DLQ"}
    assert configs["GOLIVE_CMD"].retention.value == "workqueue"
    assert configs["GOLIVE_EVT"].retention.value == "limits"
    assert all(c.duplicate_window and c.duplicate_window > 0 for c in configs.values())
