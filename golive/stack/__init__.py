"""The embedded stack (`golive up`): servers from wheels, the five services as processes, their supervision.

process.py (ports, stopping a child), nats_server.py, postgres.py, replica.py (a streaming standby),
envoy_proxy.py (Envoy and two tiny backends), webhook_sink.py (a local Slack receiver), service_processes.py
(`python -m golive serve NAME` as children, their environment, ready checks), supervise.py (restart on crash),
up.py (all of it together).
"""
