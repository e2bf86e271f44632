"""Notifier: the runbook's communication plan as Slack (and other) messages."""
