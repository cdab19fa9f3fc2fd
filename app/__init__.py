"""Hybrid ML Scheduler: the domain (simulator, learning loop, persistence, use cases)."""
