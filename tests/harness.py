"""Helpers the tests share: where the repo is, running the CLI as a user does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str], timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    """Run `golive ...` as a user would, in its own process."""
    return subprocess.run([sys.executable, "-m", "golive", *args], env=env, capture_output=True, text=True,
                          timeout=timeout_s, cwd=REPO)
