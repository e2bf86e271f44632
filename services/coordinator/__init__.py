"""Coordinator: the go-live saga. Loads a plan, moves a run between phases, compensates on failure."""
