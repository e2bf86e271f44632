"""The sql probe: one named query, parameters from a generator, a connection per worker.

A read runs in autocommit on a read-only session (one round trip; a write mistaken for a read fails
with an SQL error instead of changing data). A query that may write runs in a transaction that is always
rolled back (BEGIN, query, ROLLBACK pipelined in one round trip), unless the plan allows writes. Each request has a
timeout on the server (statement_timeout)
and on the client (a frozen server or network cannot hold a worker). A broken connection is dropped and
remade on the worker's next request, so a database restart costs errors, never the probe.
"""

from __future__ import annotations

import asyncio
import re
import time

import psycopg
from psycopg import sql

from golive.services.prober.kinds import CONNECTION, SQL, TIMEOUT, ProbeFailure, ProbeSetupError, secret
from golive.services.prober.params import MAX_SAMPLED_ROWS, Params
from golive.shared.plan.probes import SampledParams, SqlProbeSpec
from golive.shared.postgres_failures import is_auth_failure
from golive.shared.secrets import redact

_READ_START = re.compile(r"^\s*(select|with|values|show|table|explain)\b", re.I)
_WRITE_WORD = re.compile(
    r"\b(insert|update|delete|merge|truncate|copy|create|drop|alter|grant|revoke|vacuum|analyze|lock|call|do|nextval|setval|refresh|share)\b",
    re.I,
)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


def may_write(query: str) -> bool:
    """Whether ``query`` could change data. Errs on the side of yes: only plain reads say no."""
    text = _COMMENT.sub(" ", query)
    return not _READ_START.match(text) or bool(_WRITE_WORD.search(text))



def postgres_failure(exc: psycopg.Error, url: str) -> ProbeFailure:
    """How a failed PostgreSQL request counts (sql and pg_health probes): a statement cancelled by its
    statement_timeout is a timeout; a lost or refused connection a connection error (its caller drops the
    connection, the next request reconnects); any other error an SQL error. The detail never shows ``url``'s secret."""
    if isinstance(exc, psycopg.errors.QueryCanceled):  # an OperationalError too: judged first
        return ProbeFailure(TIMEOUT)
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return ProbeFailure(CONNECTION, redact(str(exc), url))
    return ProbeFailure(SQL, redact(str(exc), url))

class SqlTarget:
    """An sql probe target (see the module docstring)."""

    def __init__(self, spec: SqlProbeSpec, url: str) -> None:
        self.spec = spec
        self.name = spec.name
        self.shown = ""
        self._url = url
        self._timeout_s = spec.timeout_ms / 1000
        self._writes = may_write(spec.query)
        self._rolled_back = self._writes and not spec.allow_writes
        self._connections: list[psycopg.AsyncConnection | None] = []
        self._cursors: list[psycopg.AsyncCursor | None] = []
        self._params = Params(None, spec.params)
        # per worker: the task running its request and when the client gives up on it (see _watch)
        self._in_flight: list[tuple[asyncio.Task, float] | None] = []
        self._expired: set[int] = set()
        self._watchdog: asyncio.Task | None = None

    @classmethod
    def from_spec(cls, spec: SqlProbeSpec, env: dict[str, str]) -> SqlTarget:
        return cls(spec, secret(env, spec.database_url_env, f"probe {spec.name}"))

    async def open(self, concurrency: int) -> None:
        self._connections = [None] * concurrency
        self._cursors = [None] * concurrency
        self._in_flight = [None] * concurrency
        generator = self.spec.params_from
        rows: list = []
        if isinstance(generator, SampledParams):
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True, connect_timeout=10) as conn:
                    cur = await conn.execute(generator.query)
                    rows = await cur.fetchmany(MAX_SAMPLED_ROWS)
            except psycopg.OperationalError as exc:  # the server may be back in a moment; refused credentials are not
                raise ProbeSetupError(redact(f"probe {self.name}: the sampling query could not run: {exc}", self._url),
                                      transient=not is_auth_failure(exc)) from None
            except psycopg.Error as exc:
                raise ProbeSetupError(redact(f"probe {self.name}: the sampling query failed: {exc}", self._url)) from None
        try:
            self._params = Params(generator, self.spec.params, rows)
        except ValueError as exc:
            raise ProbeSetupError(f"probe {self.name}: {exc}") from None
        for worker in range(concurrency):
            # connect up front, so the first requests measure the query and not the connection; a database
            # that is down now is not fatal: each request retries and is counted as a connection error
            try:
                async with asyncio.timeout(self._timeout_s + 0.5):
                    await self._cursor(worker)
            except (psycopg.Error, TimeoutError):
                await self._drop(worker)
        self._watchdog = asyncio.create_task(self._watch())

    async def request(self, worker: int) -> None:
        params = self._params.draw()
        task = asyncio.current_task()
        self._in_flight[worker] = (task, time.monotonic() + self._timeout_s + 0.5)
        try:
            cur = self._cursors[worker]
            if cur is None or cur.closed:
                cur = await self._cursor(worker)
            if self._rolled_back:
                await _run_rolled_back(cur, self.spec.query, params)
            else:
                # the whole answer has arrived when execute returns; turning its rows into Python objects
                # would be the prober's own work (about a tenth of its CPU per request), not the database's
                await cur.execute(self.spec.query, params)
        except asyncio.CancelledError:
            if worker not in self._expired:
                raise
            self._expired.discard(worker)
            if task.uncancel() > 0:  # cancelled for another reason as well (the run stopping): let that win
                raise
            # the connection is mid-request in an unknown state: drop it, the next request reconnects
            await self._drop(worker)
            raise ProbeFailure(TIMEOUT) from None
        except psycopg.Error as exc:
            failure = postgres_failure(exc, self._url)
            if failure.error_class == CONNECTION:
                await self._drop(worker)
            raise failure from None
        finally:
            self._in_flight[worker] = None

    async def _watch(self) -> None:
        """The client-side timeout of every worker's request: one timer for the target instead of one per
        request (asyncio.timeout around each request costs about a sixth of the maximum rate). A request
        past its deadline (the server's statement_timeout plus half a second: a frozen server or network)
        has its task cancelled, and ``request`` turns that into a timeout."""
        period = min(0.1, self._timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for worker, in_flight in enumerate(self._in_flight):
                if in_flight is not None and in_flight[1] <= now and worker not in self._expired:
                    self._expired.add(worker)
                    in_flight[0].cancel()

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            try:
                await self._watchdog
            except asyncio.CancelledError:
                pass
            self._watchdog = None
        for worker in range(len(self._connections)):
            await self._drop(worker)

    async def _cursor(self, worker: int) -> psycopg.AsyncCursor:
        # one cursor per worker, reused: a request is the query and nothing else on the hot path
        conn, cur = self._connections[worker], self._cursors[worker]
        if conn is not None and not conn.closed and cur is not None:
            return cur
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=max(1, int(self._timeout_s + 0.999))
        )
        await conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{self.spec.timeout_ms}ms")))
        await conn.execute("SET application_name = 'golive-prober'")
        if not self._writes:
            await conn.execute("SET default_transaction_read_only = on")
        self._connections[worker] = conn
        self._cursors[worker] = cur = conn.cursor()
        return cur

    async def _drop(self, worker: int) -> None:
        conn, self._connections[worker] = self._connections[worker], None
        self._cursors[worker] = None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # closing a broken connection may fail; it is gone either way
                pass


async def _run_rolled_back(cur: psycopg.AsyncCursor, query: str, params: tuple | None) -> None:
    """BEGIN; query; ROLLBACK in one round trip (a pipeline), so the probe measures the query and not two
    extra round trips. Safe: in a pipeline, a failed statement skips everything after it, so the query never
    runs unless BEGIN did, and a transaction left open by a failure is rolled back here."""
    conn = cur.connection
    try:
        async with conn.pipeline():
            await cur.execute("BEGIN")
            await cur.execute(query, params)
            await cur.execute("ROLLBACK")
    except psycopg.Error:
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.execute("ROLLBACK")
        except psycopg.Error:
            await conn.close()  # its transaction dies with it; the next request reconnects
        raise
