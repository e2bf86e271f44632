"""A streaming read replica of an embedded PostgreSQL, for the runbook's replica-lag and WAL-lag guards.

``StreamingReplica(primary, work_dir)`` takes a base backup of the primary with the wheel's own
pg_basebackup (``-R``: it starts as a standby streaming from the primary), names itself ``replica1`` in
pg_stat_replication, and starts on a free loopback port. ``pause_replay()`` stops applying WAL (lag then grows
with every write on the primary, as a replica falling behind does); ``resume_replay()`` catches up.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import psycopg

from golive.stack.postgres import PG_SYSTEM_USER, EmbeddedPostgres, postgres_bin_dir
from golive.stack.process import Started

APPLICATION_NAME = "replica1"


@dataclass
class StreamingReplica(Started):
    """A standby of ``primary`` whose data lives under ``work_dir`` (a context manager)."""

    primary: EmbeddedPostgres
    work_dir: Path
    server: EmbeddedPostgres | None = field(default=None, repr=False)

    def url_for(self, database: str) -> str:
        assert self.server is not None, "start() first"
        return self.server.url_for(database)

    def start(self) -> Self:
        if self.work_dir.exists():
            shutil.rmtree(self.work_dir, ignore_errors=True)  # a replica is always a fresh copy of the primary
        self.work_dir.mkdir(parents=True)
        run_as = None
        if os.geteuid() == 0:  # as root the servers run as the embedded server's system user: so does the backup
            run_as = PG_SYSTEM_USER
            entry = pwd.getpwnam(PG_SYSTEM_USER)
            os.chown(self.work_dir, entry.pw_uid, entry.pw_gid)
        subprocess.run([str(postgres_bin_dir() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port),
                        "-U", "postgres", "-D", str(self.work_dir / "pgdata"), "-R", "-X", "stream", "-c", "fast"],
                       check=True, capture_output=True, timeout=120, user=run_as, cwd=self.work_dir,
                       start_new_session=True)  # a terminal's Ctrl-C is for golive up, which stops in order
        with open(self.work_dir / "pgdata" / "postgresql.auto.conf", "a") as conf:  # named in pg_stat_replication
            conf.write(f"primary_conninfo = 'host=127.0.0.1 port={self.primary.port} user=postgres "
                       f"application_name={APPLICATION_NAME}'\n")
        self.server = EmbeddedPostgres(self.work_dir).start()
        return self

    def pause_replay(self) -> None:
        """Stop applying WAL: the replica falls behind the primary from now on."""
        self._execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self._execute("SELECT pg_wal_replay_resume()")

    def _execute(self, sql: str) -> None:
        assert self.server is not None, "start() first"
        with psycopg.connect(self.server.url, autocommit=True) as conn:
            conn.execute(sql)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        shutil.rmtree(self.work_dir, ignore_errors=True)

