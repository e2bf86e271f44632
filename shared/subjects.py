"""Subjects and streams, defined once.

Every subject starts with a root (``golive`` by default). Tests give each case its own root, so
cases sharing one nats-server never see each other's messages; a team can do the same to run two
stacks on one cluster.

- ``<root>.cmd.<service>.<action>``            commands, work-queue stream ``<ROOT>_CMD``
- ``<root>.evt.<run_id>.<source>.<name>``      events, limits stream ``<ROOT>_EVT`` (audit log, feed, saga memory)
- ``<root>.dlq.<service>``                     dead letters, limits stream ``<ROOT>_DLQ``
- ``<root>.ctl.prober.<run_id>``               stop a run's probes, core NATS (no stream: only the live prober cares)

No other module writes a subject as a string: ask this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

SERVICES = ("coordinator", "migrator", "prober", "traffic", "notifier")

DUPLICATE_WINDOW_S = 120.0
EVENT_MAX_AGE_S = 400 * 24 * 3600.0  # keeps a year of runs for the weekly and yearly reports
DEAD_LETTER_MAX_AGE_S = 30 * 24 * 3600.0

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def check_token(value: str, what: str) -> str:
    """Return ``value`` if it is one NATS subject token (no dots, spaces or wildcards)."""
    if not _TOKEN.match(value):
        raise ValueError(f"{what} {value!r} must be letters, digits, '-' or '_' (it becomes a NATS subject token)")
    return value


@dataclass(frozen=True)
class Subjects:
    """All subject names and stream configurations for one subject root."""

    root: str = "golive"

    def __post_init__(self) -> None:
        check_token(self.root, "subject root")

    # commands
    def command(self, service: str, action: str) -> str:
        return f"{self.root}.cmd.{service}.{action}"

    def commands_of(self, service: str) -> str:
        return f"{self.root}.cmd.{service}.>"

    @property
    def all_commands(self) -> str:
        return f"{self.root}.cmd.>"

    # events
    def event(self, run_id: str, source: str, name: str) -> str:
        return f"{self.root}.evt.{run_id}.{source}.{name}"

    def events_of_run(self, run_id: str) -> str:
        return f"{self.root}.evt.{run_id}.>"

    def events_from(self, source: str) -> str:
        """Every run's events published by ``source`` (a service): ``<root>.evt.*.<source>.>``."""
        return f"{self.root}.evt.*.{source}.>"

    def events_named(self, source: str, name: str) -> str:
        """Every run's events of one kind: ``<root>.evt.*.<source>.<name>`` (each run's start: one event a run)."""
        return f"{self.root}.evt.*.{source}.{name}"

    @property
    def all_events(self) -> str:
        return f"{self.root}.evt.>"

    # control (core NATS)
    def stop_probes(self, run_id: str) -> str:
        """Every prober instance listens here for StopProbe of ``run_id`` (``*``: of any run)."""
        return f"{self.root}.ctl.prober.{run_id}"

    # dead letters
    def dead_letter(self, service: str) -> str:
        return f"{self.root}.dlq.{service}"

    @property
    def all_dead_letters(self) -> str:
        return f"{self.root}.dlq.>"

    # patterns: a subject with its run id replaced by ``*`` (a metric label must not grow one value per run)
    def pattern(self, subject: str) -> str:
        """The subject as a pattern of bounded values: ``<root>.evt.*.<source>.<name>``, ``<root>.ctl.prober.*``;
        commands and dead letters name no run and stay as they are. A subject outside this root (an inbox, another
        stack's) is ``other``: its tokens are nobody's to bound."""
        tokens = subject.split(".")
        if tokens[0] != self.root or len(tokens) < 3:
            return "other"
        kind = tokens[1]
        if kind == "evt" and len(tokens) == 5:
            return self.events_named(tokens[3], tokens[4])
        if kind == "ctl" and len(tokens) == 4 and tokens[2] == "prober":
            return self.stop_probes("*")
        if kind == "cmd" and len(tokens) == 4 and tokens[2] in SERVICES:
            return subject
        if kind == "dlq" and len(tokens) == 3 and tokens[2] in SERVICES:
            return subject
        return "other"

    # streams
    @property
    def command_stream(self) -> str:
        return f"{self.root.upper()}_CMD"

    @property
    def event_stream(self) -> str:
        return f"{self.root.upper()}_EVT"

    @property
    def dead_letter_stream(self) -> str:
        return f"{self.root.upper()}_DLQ"

    def stream_configs(self, replicas: int = 1) -> list[StreamConfig]:
        """The three streams, each on file with ``replicas`` and the same window for dropping a republished message.
        Work-queue commands: each command is taken by exactly one instance and removed once acked. Events and dead
        letters: kept by age, replayable."""

        def stream(name: str, subject: str, retention: RetentionPolicy, **kept: Any) -> StreamConfig:
            return StreamConfig(name=name, subjects=[subject], retention=retention, storage=StorageType.FILE,
                                duplicate_window=DUPLICATE_WINDOW_S, num_replicas=replicas, **kept)

        return [
            stream(self.command_stream, self.all_commands, RetentionPolicy.WORK_QUEUE),
            stream(self.event_stream, self.all_events, RetentionPolicy.LIMITS, max_age=EVENT_MAX_AGE_S,
                   discard=DiscardPolicy.OLD),
            stream(self.dead_letter_stream, self.all_dead_letters, RetentionPolicy.LIMITS,
                   max_age=DEAD_LETTER_MAX_AGE_S),
        ]
