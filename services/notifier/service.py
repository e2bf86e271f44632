"""Notifier service shell: renders and posts notify commands; the coordinator never waits on it."""

from __future__ import annotations

from services.notifier.slack import DeliveryError, post, render
from shared.bus import Bus, CommandError, Work
from shared.commands import Notify
from shared.events import NotificationSent
from shared.secrets import MissingSecret, secret_from_env


def register(bus: Bus) -> None:
    """Wire the notifier's command handlers onto ``bus``."""

    async def on_notify(cmd: Notify, work: Work) -> NotificationSent:
        try:
            url = secret_from_env(cmd.sink.webhook_url_env)
        except MissingSecret as exc:
            raise CommandError(str(exc), "invalid") from None
        try:
            attempts = await post(url, render(cmd))
        except DeliveryError as exc:
            raise CommandError(str(exc), "transient") from None
        return NotificationSent(kind=cmd.kind, sink=cmd.sink.type, attempts=attempts)

    bus.on_command(Notify, on_notify)
