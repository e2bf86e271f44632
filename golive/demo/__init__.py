"""`golive demo`: the runbook on this machine. run.py drives it (and plays the operator), app.py is the demo
application (the stable and canary deployments), data.py the runbook's tables and their seed rows; the plan it
runs is golive/plans/supabase-golive.yaml.
"""
