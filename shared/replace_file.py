"""Replacing a file whole: a reader sees the old file or the new one, never a part of either.

Each write goes to a temporary file of its own beside the target (threads and processes writing the same file at
once each have theirs), then is renamed over it. ``locked`` serialises a read-modify-write of one file across
threads and processes (an advisory lock on a sidecar file).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

MODE = 0o644  # as a plain write would leave it (mkstemp makes 0600)


def replace_whole(path: Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8) to ``path`` by renaming a complete temporary file over it; returns path."""
    fd, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), MODE)
            file.write(content.encode() if isinstance(content, str) else content)
        os.replace(aside, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(aside)
        raise
    return path


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (on ``.<name>.lock`` beside it) for a read-modify-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file closes
        yield
