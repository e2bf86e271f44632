"""HAProxy's runtime API (the stats socket): one command line per connection, and what its answers mean.

HAProxy answers a connection in non-interactive mode: it runs the line's commands (``;``-separated) in order,
writes each one's output followed by an empty line, and closes. A ``set server`` that succeeds writes nothing,
so any text in the answer to set commands is HAProxy's refusal. Reading is ``show servers state <backend>``:
one snapshot of every server's weights and states.

The parsing is pure (``refusal``, ``servers_state``); ``RuntimeAPI.run`` is the I/O, bounded by ``timeout_s``
from connect to the last byte, and reports an unreachable or silent socket as ``UnavailableError`` (transient).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from golive.services.traffic.provider import (
    AuthError,
    ConflictError,
    NotFoundError,
    ProviderError,
    UnavailableError,
)

MAX_ANSWER_BYTES = 1 << 20  # `show servers state` of one backend is a line per server: far below this

# srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping: a starting or a running server takes new requests
_TAKES_REQUESTS = {1, 2}


@dataclass(frozen=True)
class ServerState:
    """One server's line of ``show servers state``: the weight set at runtime (``uweight``), the configured one
    (``iweight``), and its states (``admin_state`` 0 = ready; a maintenance or drain flag means no new requests)."""

    name: str
    op_state: int
    admin_state: int
    uweight: int
    iweight: int

    @property
    def applied_weight(self) -> int:
        """The weight requests see: 0 while the server is in maintenance, draining, stopped or stopping."""
        return self.uweight if self.admin_state == 0 and self.op_state in _TAKES_REQUESTS else 0


def set_weights_line(backend: str, weights: dict[str, int]) -> str:
    """One command line setting each server's weight, the largest first: between two of its commands the backend
    never has every server at 0 (HAProxy would answer 503 to the requests in that instant)."""
    order = sorted(weights.items(), key=lambda item: -item[1])
    return "; ".join(f"set server {backend}/{server} weight {weight}" for server, weight in order)


def refusal(answer: str, what: str) -> ProviderError | None:
    """The error HAProxy's answer to set commands stands for, or None when every command succeeded (no text)."""
    text = " ".join(answer.split())
    if not text:
        return None
    reason = f"haproxy refused {what}: {text[:200]}"
    if "Permission denied" in text:
        return AuthError(reason + " (the stats socket needs `level admin`)")
    if "No such backend" in text or "No such server" in text:
        return NotFoundError(reason)
    return ConflictError(reason)  # a static balance algorithm, a weight out of range, ...


def servers_state(answer: str, backend: str) -> dict[str, ServerState]:
    """Parse ``show servers state <backend>``: the servers of ``backend`` by name."""
    lines = [line for line in answer.splitlines() if line.strip()]
    header = next((i for i, line in enumerate(lines) if line.startswith("# be_id")), None)
    if header is None:
        text = " ".join(answer.split())[:200]
        if "Can't find backend" in text:
            raise NotFoundError(f"haproxy has no backend {backend!r}")
        if "Permission denied" in text:
            raise AuthError(f"haproxy refused show servers state: {text}")
        raise ProviderError(f"haproxy answered show servers state with {text!r}, not a servers table")
    columns = lines[header][1:].split()
    servers = {}
    for line in lines[header + 1:]:
        row = dict(zip(columns, line.split(), strict=False))
        if row.get("be_name") != backend:
            continue
        try:
            server = ServerState(row["srv_name"], int(row["srv_op_state"]), int(row["srv_admin_state"]),
                                 int(row["srv_uweight"]), int(row["srv_iweight"]))
        except (KeyError, ValueError):
            raise ProviderError(f"haproxy's servers state has a line golive cannot read: {line[:200]!r}") from None
        servers[server.name] = server
    return servers


class RuntimeAPI:
    """A client of one HAProxy's runtime API, on a UNIX socket (``socket``) or TCP (``address``: host, port)."""

    def __init__(self, socket: str | None, address: tuple[str, int] | None, timeout_s: float) -> None:
        self.socket, self.address, self.timeout_s = socket, address, timeout_s
        host = address and (f"[{address[0]}]" if ":" in address[0] else address[0])
        self.where = f"unix:{socket}" if socket else f"tcp:{host}:{address[1]}" if address else "nowhere"

    async def run(self, line: str) -> str:
        """Run one command line and return HAProxy's whole answer; UnavailableError if the socket cannot be
        reached or does not answer in full within ``timeout_s``."""
        if "\n" in line or "\r" in line:
            raise ValueError("one command line")
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._exchange(line)
        except TimeoutError:
            raise UnavailableError(f"haproxy runtime API at {self.where} gave no full answer within "
                                   f"{self.timeout_s:g} s") from None
        except PermissionError:
            raise AuthError(f"haproxy runtime API at {self.where}: permission denied on the socket") from None
        except OSError as exc:
            raise UnavailableError(f"haproxy runtime API at {self.where} unreachable: "
                                   f"{type(exc).__name__}{f' ({exc.strerror})' if exc.strerror else ''}") from None

    async def _exchange(self, line: str) -> str:
        if self.socket is not None:
            reader, writer = await asyncio.open_unix_connection(self.socket)
        elif self.address is not None:
            reader, writer = await asyncio.open_connection(*self.address)
        else:
            raise ProviderError("haproxy provider: neither a socket nor an address")
        try:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            answer = bytearray()
            while chunk := await reader.read(65536):
                answer += chunk
                if len(answer) > MAX_ANSWER_BYTES:
                    raise ProviderError(f"haproxy runtime API at {self.where} answered more than "
                                        f"{MAX_ANSWER_BYTES} bytes")
            return answer.decode(errors="replace")
        finally:
            writer.close()
