"""Settings from the environment (prefix ``GOLIVE_``), validated once at the edge.

Database and webhook URLs are never settings values: plans and commands name the environment variable
that holds them, and the service reads it when it needs it (see golive.shared.secrets).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from golive.shared.subjects import Subjects

STACK_FILE = "stack.json"
DEFAULT_INBOX_PREFIX = "_INBOX"  # nats-py's and every NATS client's default


class BusUnreachable(RuntimeError):
    """The bus cannot be reached: no address configured, or nobody answers there (the CLI's exit 4)."""


class NoBusAddress(BusUnreachable):
    """Neither GOLIVE_NATS_URL nor a running embedded stack's file says where the bus is."""


class Settings(BaseSettings):
    """How a golive process reaches the bus and where it keeps local state."""

    model_config = SettingsConfigDict(env_prefix="GOLIVE_", extra="ignore")

    nats_url: str | None = Field(default=None, description="NATS URL; default: the one `golive up` wrote (never a "
                                 "guessed localhost: another team's server may listen there)")
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    nats_creds_file: Path | None = None
    nats_inbox_prefix: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        description="where this process's replies (PubAcks, JetStream API answers, pull deliveries) arrive; default "
        "_INBOX_<user> when a user is set (deploy/nats.conf lets each user read only its own), else _INBOX")
    stream_replicas: int = Field(
        default=1, ge=1, le=5, description="replicas of the streams and KV buckets golive creates (3 on a NATS "
        "cluster: each survives a node's loss); existing ones keep theirs")
    subject_root: str = "golive"
    state_dir: Path = Path(".golive")
    artifacts_dir: Path = Field(default=Path("artifacts"), description="where runs leave their report, validation and badges")
    publish_timeout_s: float = Field(default=5.0, gt=0)
    graceful_timeout_s: float = Field(default=10.0, ge=0)
    max_deliver: int = Field(default=5, ge=1)
    command_ack_wait_s: float = Field(
        default=5.0, gt=0, description="how soon a command held by a crashed instance is redelivered to a live one "
        "(a rollback included): short, since work in progress keeps its command with an in-progress ack every fifth "
        "of it")
    start_timeout_s: float = Field(
        default=30.0, gt=0, description="how long `golive run` waits for a coordinator to accept the start (exit 4 "
        "after it; the start then expires and never runs later)")
    lease_ttl_s: float = Field(
        default=15.0, gt=0, description="how long a coordinator's hold on a run lasts without renewal: a crashed "
        "coordinator's runs are taken over after it")
    prober_max_connections: int = Field(
        default=500, ge=1, description="the most connections (database sessions, HTTP connections) one prober holds "
        "for its holds at once: it runs every hold that fits and refuses the one that does not, saying so")
    report_pages: bool = Field(
        default=True, description="draw each ended run's chart.png and report.html (a worker process with matplotlib; "
        "needs the `reports` extra). Off: the validation file, report.json, report.md and badges only; `golive report "
        "RUN` draws the pages when someone wants them")
    log_level: str = "INFO"
    otel_exporter: Literal["none", "otlp"] = Field(
        default="none", description="OpenTelemetry tracing (shared/tracing.py): `otlp` sends each service's spans to "
        "the standard OTEL_EXPORTER_OTLP_ENDPOINT (needs the `tracing` extra); `none` (default) traces nothing and "
        "adds no header")
    metrics_host: str = Field(default="127.0.0.1", description="address /metrics listens on; 0.0.0.0 in a container, "
                              "so Prometheus in another container can scrape it")

    @property
    def subjects(self) -> Subjects:
        return Subjects(self.subject_root)

    def inbox_prefix(self) -> str:
        """The inbox prefix to connect with: the setting, else ``_INBOX_<user>`` (the user of the settings or of the
        URL), else NATS's shared ``_INBOX``. Its first token is the user's own, so no grant of another user's prefix,
        nor the ``_INBOX.>`` that NATS setups commonly give everyone, matches it."""
        if self.nats_inbox_prefix:
            return self.nats_inbox_prefix
        user = self.nats_user or _url_user(self.nats_url)
        if not user:
            return DEFAULT_INBOX_PREFIX
        return f"{DEFAULT_INBOX_PREFIX}_{re.sub(r'[^A-Za-z0-9_-]', '_', user)}"

    def servers(self) -> list[str]:
        """The NATS servers to connect to (nats-py's ``servers``): each URL of the resolved, comma-separated list."""
        return nats_servers(self.resolved_nats_url())

    def shown_nats_url(self) -> str:
        """The servers as logs and messages show them: ``scheme://***@host:port``, whatever the URLs carry before
        the ``@`` (a user and password, or a token alone, which pattern-based redaction cannot tell from a user)."""
        return ",".join(_without_credentials(u) for u in self.servers())

    def resolved_nats_url(self) -> str:
        """The configured URL, else the one the embedded stack (`golive up`) recorded; else NoBusAddress. A cluster
        is a comma-separated list of its nodes' URLs; each comes back with its scheme (``nats://`` when none).

        Never a default such as 127.0.0.1:4222: on a shared machine that is someone else's server, and golive
        would create its streams there and wait on it silently."""
        if self.nats_url and (servers := nats_servers(self.nats_url)):
            return ",".join(servers)
        stack = read_stack_file(self.state_dir)
        if stack and stack.get("nats_url") and (servers := nats_servers(str(stack["nats_url"]))):
            return ",".join(servers)
        raise NoBusAddress(
            f"no NATS address: set GOLIVE_NATS_URL, or start the embedded stack with `golive up` (it writes "
            f"{self.state_dir / STACK_FILE}, which golive reads from this folder)")


def nats_servers(url: str) -> list[str]:
    """The URLs of a comma-separated list of NATS servers, each with a scheme (``nats://`` when it has none, as nats-py
    assumes), so every URL reads the same to nats-py and to redaction (golive.shared.secrets hides ``scheme://user:pass@``)."""
    return [u if "://" in u else f"nats://{u}" for u in (part.strip() for part in url.split(",")) if u]


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"***@{host}" if "@" in parts.netloc else host).geturl()


def _url_user(url: str | None) -> str | None:
    """The user named in a NATS URL (the first of a comma-separated list), never its password. ``nats://secret@host``
    names no user: nats-py sends a lone user part as a token, which must not become a subject (the inbox prefix)."""
    if not url or not (servers := nats_servers(url)):
        return None
    parts = urlsplit(servers[0])
    return parts.username if parts.password is not None else None


def read_stack_file(state_dir: Path) -> dict[str, Any] | None:
    """What `golive up` recorded about the running embedded stack, if it runs."""
    path = state_dir / STACK_FILE
    try:
        recorded: dict[str, Any] = json.loads(path.read_text())
        return recorded
    except (FileNotFoundError, json.JSONDecodeError):
        return None


async def connect_options(settings: Settings) -> dict[str, Any]:
    """nats-py connection options from settings (credentials never logged): every server of GOLIVE_NATS_URL's
    comma-separated list (nats-py reconnects to another when one goes away). Replies come to the user's own inbox
    prefix (deploy/nats.conf lets no user read another's)."""
    options: dict[str, Any] = {"servers": settings.servers(), "inbox_prefix": settings.inbox_prefix()}
    if settings.nats_user:
        options["user"] = settings.nats_user
    if settings.nats_password:
        options["password"] = settings.nats_password.get_secret_value()
    if settings.nats_creds_file:
        options["user_credentials"] = str(settings.nats_creds_file)
    return options
