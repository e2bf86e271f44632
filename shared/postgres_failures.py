"""Which PostgreSQL failures a retry can help (transient) and which it cannot (fatal).

One rule in one place, for the migrator and the prober alike: the runner retries a statement, and a service tells
the coordinator whether to retry a command, from this. Authentication and authorisation failures are never
transient: retrying a wrong password only locks the account or floods the server's log.
"""

from __future__ import annotations

import psycopg

# lock_timeout, statement_timeout or cancel, the backend terminated, deadlock, serialization, too many connections
RETRYABLE_SQLSTATES = {"55P03", "57014", "57P01", "40P01", "40001", "53300"}
AUTH_SQLSTATES = {"28000", "28P01"}  # invalid_authorization_specification, invalid_password
# libpq gives no SQLSTATE for a refused connection, only the server's message: these say the server answered
# and refused who we are or where we go (role or database unknown, password, pg_hba). English server messages
# (lc_messages); another language falls back to transient, bounded by the retry policy.
_REFUSED_CONNECTION = (
    "password authentication failed", "authentication failed", "no password supplied", "no pg_hba.conf entry",
    "pg_hba.conf rejects", "is not permitted to log in", "does not exist", "permission denied for database",
)


def is_auth_failure(exc: BaseException) -> bool:
    """The server refused our credentials or our access (SQLSTATE 28000/28P01, or such a refused connection)."""
    if getattr(exc, "sqlstate", None) in AUTH_SQLSTATES:
        return True
    if isinstance(exc, psycopg.OperationalError) and getattr(exc, "sqlstate", None) is None:
        message = str(exc).lower()
        return any(marker in message for marker in _REFUSED_CONNECTION)
    return False


def is_retryable(exc: BaseException) -> bool:
    """A lock timeout, a lost backend or connection, a deadlock: the same statement may succeed later."""
    if is_auth_failure(exc):
        return False
    return getattr(exc, "sqlstate", None) in RETRYABLE_SQLSTATES or isinstance(exc, psycopg.OperationalError)


def reply_may_be_lost(exc: BaseException) -> bool:
    """The connection broke without PostgreSQL's answer: the statement may have finished all the same."""
    return isinstance(exc, psycopg.OperationalError) and getattr(exc, "sqlstate", None) is None
