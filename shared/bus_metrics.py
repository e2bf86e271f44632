"""FastStream's Prometheus middleware, labelled by subject pattern instead of by subject.

FastStream labels its message series (``faststream_received_messages_total{handler=...}`` and the others) with the
subject a message came on or went to. golive's subjects hold the run id (``<root>.evt.<run_id>...``,
``<root>.ctl.prober.<run_id>``): one new series per run, never removed. The settings providers here label with
``Subjects.pattern`` (shared/subjects.py, the one place subjects are built), so the series are bounded by the
services and message kinds, whatever the number of runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from faststream.message.message import StreamMessage
from faststream.nats.prometheus.provider import BatchNatsMetricsSettingsProvider, NatsMetricsSettingsProvider
from faststream.nats.response import NatsPublishCommand
from faststream.prometheus import ConsumeAttrs
from faststream.prometheus.middleware import PrometheusMiddleware
from faststream.response import PublishCommand
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from golive.shared.subjects import Subjects


class PatternMetricsSettingsProvider(NatsMetricsSettingsProvider):
    """One message's labels: its subject's pattern."""

    __slots__ = ("subjects",)

    def __init__(self, subjects: Subjects) -> None:
        super().__init__()
        self.subjects = subjects

    def get_consume_attrs_from_message(self, msg: StreamMessage[Msg]) -> ConsumeAttrs:
        attrs = super().get_consume_attrs_from_message(msg)
        return {**attrs, "destination_name": self.subjects.pattern(attrs["destination_name"])}

    def get_publish_destination_name_from_cmd(self, cmd: PublishCommand) -> str:
        return self.subjects.pattern(super().get_publish_destination_name_from_cmd(cmd))


class BatchPatternMetricsSettingsProvider(BatchNatsMetricsSettingsProvider):
    """A batch's labels: its first subject's pattern (as FastStream labels a batch by its first subject)."""

    __slots__ = ("subjects",)

    def __init__(self, subjects: Subjects) -> None:
        super().__init__()
        self.subjects = subjects

    def get_consume_attrs_from_message(self, msg: StreamMessage[list[Msg]]) -> ConsumeAttrs:
        attrs = super().get_consume_attrs_from_message(msg)
        return {**attrs, "destination_name": self.subjects.pattern(attrs["destination_name"])}

    def get_publish_destination_name_from_cmd(self, cmd: PublishCommand) -> str:
        return self.subjects.pattern(super().get_publish_destination_name_from_cmd(cmd))


def pattern_provider_factory(subjects: Subjects) -> Callable[[Any], Any]:
    """FastStream's settings_provider_factory (faststream/nats/prometheus/provider.py), with pattern labels."""
    def factory(msg: Msg | Sequence[Msg] | None) -> Any:
        if isinstance(msg, Sequence):
            return BatchPatternMetricsSettingsProvider(subjects)
        if isinstance(msg, Msg) or msg is None:
            return PatternMetricsSettingsProvider(subjects)
        return None  # KeyValue and Object Store watches: not counted, as in FastStream's own factory

    return factory


class SubjectPatternPrometheusMiddleware(PrometheusMiddleware[Msg | Sequence[Msg], NatsPublishCommand]):
    """FastStream's NatsPrometheusMiddleware with bounded labels: subject patterns, never a run id."""

    def __init__(self, *, registry: CollectorRegistry, subjects: Subjects, app_name: str) -> None:
        super().__init__(settings_provider_factory=pattern_provider_factory(subjects), registry=registry,
                         app_name=app_name)
