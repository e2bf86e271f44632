"""Prober: latency and health measurements (named SQL queries first; HTTP and Postgres health later)."""
