"""deploy/nats.conf, the accounts file docker-compose.yml mounts, on a real nats-server of a test's own: its users
and their passwords, and one user's connection that collects the permission violations the server reports to it.
The ``secured_nats`` fixture (tests/conftest.py) starts it."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nats

from golive.shared.bus import ensure_streams
from golive.shared.settings import Settings
from golive.shared.subjects import SERVICES, Subjects
from golive.stack.nats_server import EmbeddedNats
from golive.stack.service_processes import DATABASE_ENV, WEBHOOK_ENV, ServiceProcesses, wait_until_ready
from tests.harness import REPO

NATS_CONF = REPO / "deploy" / "nats.conf"
USERS = (*SERVICES, "operator", "monitoring")
ROOT = Subjects()  # the file names the default root's subjects and streams


def password_env(user: str) -> str:
    """The variable deploy/nats.conf reads a user's password from (docker-compose.yml sets it from .env)."""
    return f"GOLIVE_{user.upper()}_NATS_PASSWORD"


@dataclass
class SecuredNats:
    server: EmbeddedNats
    passwords: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def url_as(self, user: str) -> str:
        return self.url.replace("nats://", f"nats://{user}:{self.passwords[user]}@")

    def env_as(self, user: str, env: dict[str, str]) -> dict[str, str]:
        """A process's environment that connects as ``user`` (the way docker-compose.yml configures each service)."""
        return {**env, "GOLIVE_NATS_URL": self.url, "GOLIVE_NATS_USER": user, "GOLIVE_NATS_PASSWORD": self.passwords[user]}

    def violations(self) -> list[str]:
        log = (self.server.data_dir / "nats-server.log").read_text()
        return [line for line in log.splitlines() if "Violation" in line]


@contextmanager
def services_on_own_users(secured: SecuredNats, database_url: str, webhook_url: str, tmp_path: Path) -> Iterator[dict]:
    """The five services, each connected as its own user (as docker-compose.yml runs them), logging under
    ``tmp_path/logs``; yields the environment, without the user, that the CLI is given (``env_as("operator", ...)``).
    A service that cannot get ready is reported with the permission violations the server logged."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GOLIVE_")}  # nothing of the session's own bus
    base.update({"GOLIVE_STATE_DIR": str(tmp_path / "state"), "GOLIVE_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
                 "GOLIVE_GRACEFUL_TIMEOUT_S": "5", "PYTHONUNBUFFERED": "1",
                 DATABASE_ENV: database_url, WEBHOOK_ENV: webhook_url})
    groups = [ServiceProcesses(secured.env_as(name, base), tmp_path / "logs") for name in SERVICES]
    try:
        for name, group in zip(SERVICES, groups):
            group.start((name,))
        try:
            asyncio.run(wait_until_ready(Settings(nats_url=secured.url_as("operator")), SERVICES))
        except (TimeoutError, RuntimeError) as exc:  # most likely a subject deploy/nats.conf does not allow yet
            raise AssertionError(f"{exc}; refused by deploy/nats.conf: {secured.violations()}") from None
        yield base
    finally:
        for group in groups:
            group.stop()


async def streams_exist(secured: SecuredNats) -> None:
    """The streams, as any service's start (or the CLI's) creates them."""
    await ensure_streams(Settings(nats_url=secured.url_as("operator")))


class Client:
    """One user's connection, collecting the permission violations the server reports to it."""

    def __init__(self, secured: SecuredNats, user: str) -> None:
        self.secured, self.user = secured, user
        self.errors: list[str] = []
        self.changed = asyncio.Event()

    async def __aenter__(self) -> Client:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))
            self.changed.set()

        # replies on the user's own inbox prefix, as golive's connections (shared/bus.py) and the example use
        inbox = Settings(nats_url=self.secured.url, nats_user=self.user).inbox_prefix()
        self.nc = await nats.connect(self.secured.url, user=self.user, password=self.secured.passwords[self.user],
                                     inbox_prefix=inbox, error_cb=on_error, max_reconnect_attempts=0)
        self.js = self.nc.jetstream(timeout=5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()

    async def refused(self, what: str, subject: str) -> None:
        """Wait until the server reports a ``what`` ("publish", "subscription") violation on ``subject``."""
        expected = f'permissions violation for {what} to "{subject}"'.lower()  # nats-py lowercases it
        while not any(expected in e.lower() for e in self.errors):
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


@contextmanager
def started_secured_nats(data_dir: Path) -> Iterator[SecuredNats]:
    """A nats-server started with the very file docker-compose.yml uses, each user with a fresh password."""
    passwords = {user: f"test-{user}-{secrets.token_hex(6)}" for user in USERS}
    env = {**os.environ, **{password_env(user): password for user, password in passwords.items()}}
    with EmbeddedNats(data_dir, config_file=NATS_CONF, env=env) as server:
        yield SecuredNats(server, passwords)
