"""golive: the command line, its client of the bus, the embedded stack and the demo.

cli/ (the `golive` command, one module per group of commands), client.py (the CLI's client of the bus: start,
watch, operate and read runs), api.py (the public Python client on it: docs/client.md), resume.py (drive a run
from this process), serve.py (one service as a process), views/ (how runs read on a terminal), stack/ (`golive
up`: the embedded servers, the services as processes, their supervision), demo/ (`golive demo`: the demo app, its
data), plans/ (the plans golive ships, plan check, rehearsal time compression), docs/ (the files generated from
the code).
"""
