"""Traffic service shell: shift and rollback commands, each verified by reading the weight back."""

from __future__ import annotations

from services.traffic.provider import ProviderError, build_provider
from shared.bus import Bus, CommandError, Work
from shared.commands import RollbackTraffic, ShiftTraffic
from shared.events import TrafficRolledBack, TrafficShifted


def register(bus: Bus) -> None:
    """Wire the traffic service's command handlers onto ``bus``."""
    state_dir = bus.settings.state_dir

    async def on_shift(cmd: ShiftTraffic, work: Work) -> TrafficShifted:
        try:
            provider = build_provider(cmd.provider, state_dir)
            await provider.set_weight(cmd.canary, cmd.stable, cmd.weight)
            verified = await provider.read_weight(cmd.canary)
        except ProviderError as exc:
            raise CommandError(str(exc), "transient" if exc.transient else "fatal") from None
        if verified != cmd.weight:
            raise CommandError(f"{provider.name} reads back canary weight {verified}, expected {cmd.weight}", "fatal")
        return TrafficShifted(provider=provider.name, canary=cmd.canary, weight=cmd.weight, verified_weight=verified)

    async def on_rollback(cmd: RollbackTraffic, work: Work) -> TrafficRolledBack:
        try:
            provider = build_provider(cmd.provider, state_dir)
            await provider.rollback(cmd.canary, cmd.to)
            verified = await provider.read_weight(cmd.canary)
        except ProviderError as exc:
            raise CommandError(str(exc), "transient" if exc.transient else "fatal") from None
        if verified != 0:
            raise CommandError(f"{provider.name} still sends {verified}% to {cmd.canary} after rollback", "fatal")
        return TrafficRolledBack(provider=provider.name, canary=cmd.canary, to=cmd.to, verified_weight=verified)

    bus.on_command(ShiftTraffic, on_shift)
    bus.on_command(RollbackTraffic, on_rollback)
