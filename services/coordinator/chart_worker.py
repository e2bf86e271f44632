"""The process that draws a run's chart and pages (services/coordinator/reports.py starts it on first use).

Its own small module because a spawned worker imports the module of each function it is given: this one needs
only ctypes and os, so the worker loads the report's modules (and matplotlib) and not the coordinator's bus.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def die_with_parent(parent_pid: int) -> None:
    """In the chart worker: end when the coordinator ends, even by kill -9 (no orphaned workers, each holding
    matplotlib's memory, and with them multiprocessing's resource tracker, which waits for its last user)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the coordinator died before the line above took effect
        os._exit(0)
