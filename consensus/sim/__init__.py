"""Deterministic fault simulator for the consensus core (DESIGN §6, issue 4)."""
