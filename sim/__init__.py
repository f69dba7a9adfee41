"""Cycle-level, event-driven simulator of the accelerator."""
