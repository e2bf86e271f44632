"""Prober: latency, error and health measurements: SQL queries, HTTP endpoints, Postgres health, canary vs stable."""
