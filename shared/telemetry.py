"""Structured logs and Prometheus metrics for every golive process."""

from __future__ import annotations

import logging
import sys

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server


def configure_logging(service: str, level: str = "INFO") -> structlog.stdlib.BoundLogger:
    """JSON lines on stderr, one per event, with the service name on every line."""
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    # httpx logs every request at INFO: a probe's thousands per second would drown the service's own lines
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logger: structlog.stdlib.BoundLogger = structlog.get_logger().bind(service=service)
    return logger


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
