"""golive: the command line and the composition roots (embedded stack, service runner)."""
