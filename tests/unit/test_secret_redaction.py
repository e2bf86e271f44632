"""Credentials are scrubbed from any text before it reaches an event, a log line or an artifact."""

from __future__ import annotations

import pytest

from golive.shared.secrets import MissingSecret, redact, secret_from_env, shown_url


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (
            "connection to postgresql://golive:s3cr3t-Pa55@db.internal:5432/app failed",
            "s3cr3t-Pa55",
            "postgresql://golive:***@db.internal:5432/app",
        ),
        ("nats://ops:hunter2@nats-1:4222 refused", "hunter2", "nats://ops:***@nats-1:4222"),
        ("redis://:only-a-password@cache:6379/0", "only-a-password", "redis://:***@cache:6379/0"),
    ],
)
def test_password_in_a_url_is_removed_and_the_rest_kept(text, secret, kept):
    redacted = redact(text)

    assert secret not in redacted
    assert kept in redacted


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("host=db user=golive password=s3cr3t dbname=app", "s3cr3t"),
        ("host=db password = 's3cr3t with spaces' dbname=app", "s3cr3t with spaces"),
        ("PGPASSWORD=s3cr3t psql", "s3cr3t"),
    ],
)
def test_password_keyword_value_is_removed(text, secret):
    redacted = redact(text)

    assert secret not in redacted
    assert "password" in redacted.lower()
    assert "***" in redacted


def test_keyword_string_keeps_the_other_keywords():
    assert redact("host=db user=golive password=s3cr3t dbname=app") == "host=db user=golive password=*** dbname=app"


def test_quoted_password_with_spaces_is_removed_whole():
    assert redact("host=db password = 'correct horse battery' dbname=app") == "host=db password = *** dbname=app"


def test_slack_webhook_path_is_removed():
    redacted = redact("POST https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX returned 404")

    assert "T0001" not in redacted
    assert "XXXXsecretXXXX" not in redacted
    assert redacted == "POST https://hooks.slack.com/services/*** returned 404"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2ln", "eyJhbGciOiJIUzI1NiJ9"),
        ("authorization: bearer abc123~token", "abc123~token"),
        ("token xoxb-1234-5678-abcdefSECRET rejected", "xoxb-1234-5678-abcdefSECRET"),
    ],
)
def test_bearer_and_slack_tokens_are_removed(text, secret):
    assert secret not in redact(text)


def test_explicit_values_are_removed_wherever_they_appear():
    webhook = "https://alerts.example.com/hook/abc-123"

    redacted = redact(f"sink {webhook} timed out after posting to {webhook}", webhook)

    assert redacted == "sink *** timed out after posting to ***"


def test_empty_explicit_value_removes_nothing():
    assert redact("nothing secret here", "") == "nothing secret here"


def test_text_without_credentials_is_unchanged():
    text = "CREATE INDEX CONCURRENTLY idx ON events(created_at) took 2.5s; http://envoy:9901/clusters ok"

    assert redact(text) == text


def test_secret_is_read_from_the_named_environment_variable(monkeypatch):
    monkeypatch.setenv("GOLIVE_TEST_SECRET", "value")

    assert secret_from_env("GOLIVE_TEST_SECRET") == "value"


@pytest.mark.parametrize("value", [None, ""])
def test_missing_secret_names_the_variable(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("GOLIVE_TEST_SECRET", raising=False)
    else:
        monkeypatch.setenv("GOLIVE_TEST_SECRET", value)

    with pytest.raises(MissingSecret, match="environment variable GOLIVE_TEST_SECRET is not set"):
        secret_from_env("GOLIVE_TEST_SECRET")


@pytest.mark.parametrize(("url", "shown"), [
    ("https://probe:s3cret@app.example.com:8443/api/health?token=s3cret#top", "https://app.example.com:8443/api/health"),
    ("http://127.0.0.1:5000/status/404", "http://127.0.0.1:5000/status/404"),
    ("https://hooks.slack.com/services/T0/B0/s3cret", "https://hooks.slack.com/services/***"),
    ("http://u:s3cret@[::1/health?token=s3cret", "http://u:***@[::1/health"),  # one the parser refuses
])
def test_a_url_is_shown_without_credentials_query_or_fragment(url, shown):
    assert shown_url(url) == shown
