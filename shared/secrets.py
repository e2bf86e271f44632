"""Secrets are named by environment variable and never leave the process that reads them.

``secret_from_env`` reads one; ``redact`` scrubs credentials out of any text (error messages from
drivers and HTTP clients can quote URLs) before it goes into an event, a log line or an artifact.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, Field

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
# scheme://user:password@host: the one shape of credential a plan or a command may never carry
_URL_PASSWORD = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")

NO_PASSWORD_IN_PLANS = ("holds a URL with a password (not shown): a plan names secrets by environment variable; "
                        "put the URL in one (e.g. DATABASE_URL) and name that variable instead")


class MissingSecret(LookupError):
    """The environment variable a plan names is not set in the process that needs it."""


def secret_from_env(name: str) -> str:
    """Value of environment variable ``name``; the error names the variable, never a value."""
    value = os.environ.get(name) if is_env_name(name) else None
    if not value:
        raise MissingSecret(f"environment variable {describe_env_name(name)} is not set (the plan names it; "
                            "set it for this service)")
    return value


def is_env_name(name: object) -> bool:
    """Whether ``name`` can be an environment variable's name (letters, digits and '_', not first a digit)."""
    return isinstance(name, str) and bool(_ENV_NAME.fullmatch(name))


def describe_env_name(name: object) -> str:
    """``name`` for an error message if it is a variable's name; else a placeholder (it may be a secret value)."""
    return str(name) if is_env_name(name) else "(not a variable name; the value given is not shown)"


def has_password(text: str) -> bool:
    """Whether ``text`` contains a URL with a password (``scheme://user:password@host``)."""
    return bool(_URL_PASSWORD.search(text))


def find_password(data: object) -> tuple[str | int, ...] | None:
    """Where the first URL with a password is in ``data`` (nested mappings and lists, keys included), or None.

    Each container is visited once, so data whose parts are shared (YAML aliases) is walked in linear time."""
    return next(_password_paths(data, (), set()), None)


def _password_paths(data: object, where: tuple[str | int, ...], seen: set[int]) -> Iterator[tuple[str | int, ...]]:
    if isinstance(data, str):
        if has_password(data):
            yield where
        return
    if not isinstance(data, (dict, list, tuple)) or id(data) in seen:
        return
    seen.add(id(data))
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        if isinstance(key, str) and has_password(key):
            yield (*where, key)
        yield from _password_paths(value, (*where, key), seen)


def _env_name_problem(value: object) -> str | None:
    # the value is never quoted back: a name field holding a value holds a secret, more often than not
    if is_env_name(value):
        return None
    what = "a URL with a password" if isinstance(value, str) and has_password(value) else "not a variable name"
    return (f"names an environment variable (letters, digits and '_', e.g. DATABASE_URL), never holds its value; "
            f"this is {what} (not shown)")


def _env_name(value: str) -> str:
    if problem := _env_name_problem(value):
        raise ValueError(problem)
    return value


def refuse_password(value: str) -> str:
    """``value`` unless it holds a URL with a password (ValueError, not quoting it): a validator for text fields."""
    if has_password(value):
        raise ValueError(NO_PASSWORD_IN_PLANS)
    return value


# the type of every field that names a secret by environment variable (``database_url_env``, ``token_env``, ...)
EnvName = Annotated[str, AfterValidator(_env_name), Field(json_schema_extra={"pattern": ENV_NAME_PATTERN})]
# the type of every URL a plan or a command carries in clear (a probe's url, a report link)
PlainUrl = Annotated[str, AfterValidator(refuse_password)]


def check_extras(extras: dict[str, object]) -> None:
    """The rule for free-form settings (a provider's or a sink's extra keys): keys ending in ``_env`` name a
    variable, and no value holds a URL with a password. ValueError naming the key (never the value)."""
    for key, value in extras.items():
        if key.endswith("_env") and (problem := _env_name_problem(value)):
            raise ValueError(f"{key} {problem}")
        if find_password(value) is not None:
            raise ValueError(f"{key} {NO_PASSWORD_IN_PLANS}")


_PATTERNS = [
    # scheme://user:password@host  -> scheme://user:***@host
    (_URL_PASSWORD, r"\g<pre>***@"),
    # password=... in libpq keyword strings
    (re.compile(r"(?i)(password\s*=\s*)('[^']*'|\S+)"), r"\1***"),
    # Slack incoming-webhook paths
    (re.compile(r"hooks\.slack\.com/services/\S+"), "hooks.slack.com/services/***"),
    # bearer tokens and Slack tokens
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"xox[abprs]-[A-Za-z0-9-]+"), "xox?-***"),
]


def shown_url(url: str) -> str:
    """``url`` as a message may show it (which endpoint failed): scheme, host, port and path, without the user and
    password, the query or the fragment (a query string can carry a token), and redacted besides."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a URL the parser reads (a bad port, a broken IPv6 address): up to its query, redacted
        return redact(re.split(r"[?#]", url, maxsplit=1)[0])
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    shown = urlunsplit((parts.scheme, host + port, parts.path, "", "")) if parts.scheme else parts.path
    return redact(shown)


def redact(text: str, *also: str) -> str:
    """Remove credentials from ``text``; ``also`` are exact values (a webhook URL, a token) to hide too."""
    for value in also:
        if value:
            text = text.replace(value, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
