"""Structured logs and Prometheus metrics for every golive process."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server


def configure_logging(service: str, level: str = "INFO") -> structlog.stdlib.BoundLogger:
    """JSON lines on stderr, one per event, with the service name on every line: golive's own (structlog) and every
    library's (stdlib logging: FastStream, nats-py, psycopg...), so a log shipper parses each line the same way."""
    numeric = logging.getLevelName(level.upper())
    named = _named(service)
    common: list[Any] = [structlog.contextvars.merge_contextvars, named, structlog.processors.add_log_level,
                         structlog.processors.TimeStamper(fmt="iso", utc=True)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *common],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer()],
    ))
    handler.set_name("golive-json")
    root = logging.getLogger()
    # ours replaces an earlier one of ours (configured twice in one process); other handlers stay (pytest's capture)
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "golive-json"] + [handler]
    root.setLevel(numeric)
    # httpx logs every request at INFO: a probe's thousands per second would drown the service's own lines
    logging.getLogger("httpx").setLevel(max(logging.WARNING, numeric))
    structlog.configure(
        processors=[*common, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logger: structlog.stdlib.BoundLogger = structlog.get_logger().bind(service=service)
    return logger


def library_logger(name: str) -> logging.Logger:
    """A stdlib logger for a library that takes one (FastStream's app and broker): it propagates to the root
    handler configure_logging set, so its lines are JSON too, instead of the library's own coloured text."""
    logger = logging.getLogger(f"golive.lib.{name}")
    logger.propagate = True
    return logger


def _named(service: str) -> Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]:
    def add_service(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault("service", service)
        return event

    return add_service


class ServiceMetrics:
    """golive's own counters, beside FastStream's middleware metrics, in one registry per process."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.port: int | None = None
        labels = ["service"]
        self.service = service
        self.commands = Counter(
            "golive_commands_total", "Commands handled, by outcome", labels + ["type", "outcome"], registry=self.registry
        )
        self.dead_letters = Counter(
            "golive_dead_letters_total", "Messages that could not be parsed", labels, registry=self.registry
        )
        self.command_seconds = Histogram(
            "golive_command_seconds", "Time to handle a command", labels + ["type"], registry=self.registry,
            buckets=(0.005, 0.02, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
        )
        self.events_published = Counter(
            "golive_events_published_total", "Events published", labels + ["type"], registry=self.registry
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Expose /metrics on ``port`` (0 picks a free one); returns the port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = server.server_port
        return self.port
