"""Traffic: shifts traffic between deployments through providers, and reads it back."""
