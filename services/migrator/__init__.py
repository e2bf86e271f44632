"""Migrator: online Postgres migrations (CREATE INDEX CONCURRENTLY one statement at a time)."""
