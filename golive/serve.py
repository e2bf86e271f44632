"""Running one service as its own process: `golive serve NAME`.

The composition root of a service: settings, logs, metrics, the bus, the service's handlers, and a
FastStream app that traps SIGINT/SIGTERM and shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import faulthandler
import signal
from collections.abc import Callable
from pathlib import Path

from golive.shared.bus import Bus
from golive.shared.replace_file import replace_whole
from golive.shared.secrets import redact
from golive.shared.settings import Settings
from golive.shared.telemetry import ServiceMetrics, configure_logging
from golive.shared.tracing import configure_tracing, shutdown_tracing

# How many commands one instance works on at once. One migration at a time (one concurrent index build
# per table, and builds wait on each other's snapshots); the coordinator applies decisions in order. The
# prober's is its connection budget's (concurrency()).
CONCURRENCY = {"coordinator": 1, "migrator": 1, "traffic": 4, "notifier": 8}
# beyond the holds its budget fits (each holds at least one connection): commands taken at once only to be
# refused (services/prober/capacity.py), so that none waits in a queue
PROBER_REFUSING = 16


def concurrency(name: str, settings: Settings) -> int:
    """How many commands one instance of service ``name`` works on at once."""
    if name == "prober":
        return settings.prober_max_connections + PROBER_REFUSING
    return CONCURRENCY[name]


def _registrar(name: str) -> Callable[[Bus], object]:
    """Service ``name``'s registrar. Only that service's code is imported: a service process loads its own handlers,
    not the other four's (a stack starts five processes; each import is start-up time)."""
    if name == "coordinator":
        from golive.services.coordinator.service import register
    elif name == "migrator":
        from golive.services.migrator.service import register
    elif name == "prober":
        from golive.services.prober.service import register
    elif name == "traffic":
        from golive.services.traffic.service import register
    elif name == "notifier":
        from golive.services.notifier.service import register
    else:
        raise ValueError(f"unknown service {name!r}; services: coordinator, migrator, prober, traffic, notifier")
    return register


def build_service(name: str, settings: Settings, metrics: ServiceMetrics | None = None):
    """The FastStream app of service ``name``, wired to the bus (also used to generate AsyncAPI docs)."""
    register = _registrar(name)
    log = configure_logging(name, settings.log_level)
    metrics = metrics or ServiceMetrics(name)
    bus = Bus(settings, name, metrics, log, max_workers=concurrency(name, settings))
    wired = register(bus)
    after, before_stop = [], []
    if hasattr(wired, "start_ticking"):
        after.append(wired.start_ticking)
        before_stop.append(wired.stop_ticking)

    async def ready() -> None:
        log.info("service.ready", metrics=f"http://127.0.0.1:{metrics.port}/metrics" if metrics.port else None)

    bus.start_consuming_commands()
    return bus.app(f"golive {name}", after_startup=[*after, ready], on_shutdown=before_stop), bus


class ServiceFailed(SystemExit):
    """The service stopped on an error it logged (``service.failed``): exit code 1."""


async def serve(name: str, settings: Settings, metrics_port: int, port_file: Path | None = None) -> None:
    """Run service ``name`` until SIGINT or SIGTERM. ``metrics_port`` 0: any free port, named in ``service.ready``
    and written to ``port_file`` when given (golive/stack/service_processes.py reads it).
    An error that stops the service (a metrics port taken, the bus refusing it) is one JSON line, ``service.failed``,
    like every other line it logs, and exit code 1."""
    # `kill -USR1 PID`: every thread's Python stack on stderr (the service's log), for a service that hangs; the
    # one exception to its JSON lines, as a thread dump is (golive.stack.service_processes asks before a SIGKILL)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    metrics = ServiceMetrics(name)
    app, bus = build_service(name, settings, metrics)  # the JSON logs first: whatever happens next is logged as JSON
    try:
        metrics.serve(metrics_port, host=settings.metrics_host)
        if port_file is not None:
            replace_whole(port_file, str(metrics.port))
        # after the fork (the span exporter has a thread); its last spans leave once the app has stopped
        configure_tracing(name, settings.otel_exporter)
        try:
            await app.run()
        finally:
            await asyncio.to_thread(shutdown_tracing)
    except Exception as exc:
        bus.log.error("service.failed", error=redact(f"{type(exc).__name__}: {exc}"))
        raise ServiceFailed(1) from None
