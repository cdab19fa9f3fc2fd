"""The scheduler core: numpy only, no I/O, no frameworks.

A `Workload` (tasks as arrays) is placed on a `Cluster` (devices as arrays) by a `Policy`,
through the one event-driven `simulate` engine; `metrics.summarize` turns the resulting
`Schedule` into the numbers a leaderboard shows.
"""
