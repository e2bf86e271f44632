"""Secrets are named by environment variable and never leave the process that reads them.

``secret_from_env`` reads one; ``redact`` scrubs credentials out of any text (error messages from
drivers and HTTP clients can quote URLs) before it goes into an event, a log line or an artifact.
"""

from __future__ import annotations

import os
import re


class MissingSecret(LookupError):
    """The environment variable a plan names is not set in the process that needs it."""


def secret_from_env(name: str) -> str:
    """Value of environment variable ``name``; the error names the variable, never a value."""
    value = os.environ.get(name)
    if not value:
        raise MissingSecret(f"environment variable {name} is not set (the plan names it; set it for this service)")
    return value


_PATTERNS = [
    # scheme://user:password@host  -> scheme://user:***@host
    (re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"), r"\g<pre>***@"),
    # password=... in libpq keyword strings
    (re.compile(r"(?i)(password\s*=\s*)('[^']*'|\S+)"), r"\1***"),
    # Slack incoming-webhook paths
    (re.compile(r"hooks\.slack\.com/services/\S+"), "hooks.slack.com/services/***"),
    # bearer tokens and Slack tokens
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"xox[abprs]-[A-Za-z0-9-]+"), "xox?-***"),
]


def redact(text: str, *also: str) -> str:
    """Remove credentials from ``text``; ``also`` are exact values (a webhook URL, a token) to hide too."""
    for value in also:
        if value:
            text = text.replace(value, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
