"""The `golive` command: app.py registers every command; one module per group of them.

run.py (run, events), operate.py (abort, approve, pause, continue, retry, resume), status.py (status, watch),
report.py, plan.py (plan check, plan schema, migrate), stack.py (serve, up), demo.py, docs.py (docs ...).
console.py and arguments.py are what the commands share: the terminal and exit codes, the checked arguments.
The commands are thin: the work is in golive/client.py (the bus), golive/stack/, golive/demo/ and the services.
"""
