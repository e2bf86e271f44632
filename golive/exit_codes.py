"""What `golive` exits with, and the refusal that maps to one. A module of its own, free of the bus, so that a command
that never talks to NATS (`plan check`, `--help`, a refused argument) starts without loading it."""

from __future__ import annotations

EXIT_SUCCEEDED, EXIT_ROLLED_BACK, EXIT_INVALID, EXIT_NEEDS_HUMAN, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
# Ctrl-C. A command it cuts short (`run` and `resume` stop watching or driving, the run goes on in the coordinator;
# `demo` stops its whole stack) says so and exits 130, the shell's code for a process ended by SIGINT: a script must
# not read it as a run's outcome.
# `golive up` is different: Ctrl-C (or SIGTERM) is how it is meant to end, so once it has stopped everything it
# started, it says what it stopped and exits 0 (EXIT_STOPPED), whether the stack was up or still starting.
EXIT_INTERRUPTED = 130
EXIT_STOPPED = 0
# a watched run's exit code is its outcome's
EXIT_BY_OUTCOME = {"succeeded": EXIT_SUCCEEDED, "rolled_back": EXIT_ROLLED_BACK, "needs_human": EXIT_NEEDS_HUMAN}


class RunNotControllable(ValueError):
    """An operator command that cannot apply: unknown run, or one that already ended."""


class StartRefused(RunNotControllable):
    """A run that did not start: outside its plan's maintenance window, or refused by the coordinator (why: the
    message). Nothing of it runs later."""
