"""Which metric orders a leaderboard, and the order itself.

Online workloads (tasks arriving over time) are judged by what their users wait for, the mean
flow time; static DAGs (everything known at t = 0) by when the whole graph is done, the makespan.
A spec's `rank_by` overrides the default. Ties go to the smaller makespan, then mean flow time,
then the policy's name, so the order is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, TypeVar

from app.sim.metrics import Metrics
from app.sim.workload import Workload

RankMetric = Literal[
    "makespan", "mean_flow_time", "p95_flow_time", "mean_slowdown", "energy", "cost"
]
RANK_METRICS: tuple[str, ...] = RankMetric.__args__  # type: ignore[attr-defined]


class Ranked(Protocol):
    @property
    def policy(self) -> str: ...

    @property
    def metrics(self) -> Metrics: ...


def is_online(workload: Workload) -> bool:
    """Whether tasks arrive spread in time (rather than all at once)."""
    return workload.num_tasks > 1 and float(workload.arrival.max()) > float(workload.arrival.min())


def default_rank_by(workload: Workload) -> str:
    return "mean_flow_time" if is_online(workload) else "makespan"


T = TypeVar("T", bound=Ranked)


def ranked(outcomes: Sequence[T], rank_by: str) -> list[T]:
    """Best first by `rank_by` (lower is better for every rank metric)."""
    if rank_by not in RANK_METRICS:
        raise ValueError(f"unknown rank metric {rank_by!r}; known: {', '.join(RANK_METRICS)}")
    return sorted(
        outcomes,
        key=lambda o: (
            o.metrics.value(rank_by),
            o.metrics.makespan,
            o.metrics.mean_flow_time,
            o.policy,
        ),
    )
