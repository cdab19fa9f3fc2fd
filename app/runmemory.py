"""How much memory a run needs, estimated from its spec before it runs, so that a spec the API
accepts fits the worker (`Settings.run_memory_budget_mb`).

A run's arrays grow with its tasks n, its dependencies e, its devices d (the n x d times,
feasibility and the policies' per-device estimates) and its policies p (each keeps its per-task
schedule until the run's results are written). The estimate is

    MB = FIXED_MB + (n * (BYTES_PER_TASK + BYTES_PER_TASK_DEVICE d + BYTES_PER_TASK_POLICY p)
                     + e * BYTES_PER_EDGE) / 2**20

where e bounds its dependencies from above (a layered DAG's generator holds them as Python
pairs while it draws them), with constants fitted above the peak resident memory (and address
space) that runs of several shapes measured above their warmed pool process
(`bench/run_memory.py`, docs/guarantees.md): it over-estimates every measured case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.errors import InvalidSpec
from app.runspec import (
    ClusterSpec,
    ExplicitSpec,
    LayeredDagSpec,
    RunSpec,
    SyntheticWorkloadSpec,
    TiledSpec,
)
from app.sim.tiled import task_count
from app.sim.workload import Workload

# Fitted December 2026 on the measurements of docs/guarantees.md (bench/run_memory.py).
FIXED_MB = 32.0
BYTES_PER_TASK = 160
BYTES_PER_TASK_DEVICE = 40
BYTES_PER_TASK_POLICY = 48
BYTES_PER_EDGE = 200
#: Parents a tiled-algebra task has at most (a GEMM update: two panels and its previous value).
TILED_PARENTS = 3


@dataclass(frozen=True)
class RunShape:
    """What a run's memory grows with: tasks, dependencies (at most), devices and policies."""

    tasks: int
    edges: int
    devices: int
    policies: int

    @property
    def estimate_mb(self) -> float:
        """Peak memory (MB) the run is expected to need above its process's footprint."""
        per_task = (
            BYTES_PER_TASK
            + BYTES_PER_TASK_DEVICE * self.devices
            + BYTES_PER_TASK_POLICY * self.policies
        )
        return FIXED_MB + (self.tasks * per_task + self.edges * BYTES_PER_EDGE) / 2**20


def planned_shape(spec: RunSpec) -> RunShape | None:
    """The run's shape as the spec states it; None for an imported file or DAG, whose tasks are
    known once it is parsed (built_shape)."""
    workload = spec.workload
    if isinstance(workload, TiledSpec):
        tasks = task_count(workload.factorization, workload.tiles)
        return _shape(spec, tasks, TILED_PARENTS * tasks)
    if isinstance(workload, LayeredDagSpec):
        return _shape(spec, workload.num_tasks, _layered_edges(workload))
    if isinstance(workload, SyntheticWorkloadSpec):
        parents = workload.max_parents if workload.dependency_probability > 0 else 0
        return _shape(spec, workload.num_tasks, workload.num_tasks * parents)
    return None


def built_shape(spec: RunSpec, workload: Workload) -> RunShape:
    """The shape of `spec`'s run once its workload is built (an imported one)."""
    return _shape(spec, workload.num_tasks, int(workload.parent_idx.size))


def _layered_edges(workload: LayeredDagSpec) -> int:
    """At most: every task draws `density` of the tasks of the `jump` levels above it, each
    level at most (2 - regularity) x the mean n ** width (generators.layered_dag)."""
    widest = math.ceil(max(1.0, workload.num_tasks**workload.width) * (2 - workload.regularity))
    return workload.num_tasks * max(1, math.ceil(workload.density * workload.jump * widest))


def _shape(spec: RunSpec, tasks: int, edges: int) -> RunShape:
    if spec.cluster is None and isinstance(spec.workload, ExplicitSpec):
        devices = spec.workload.num_devices
    else:
        cluster = spec.cluster or ClusterSpec()
        devices = cluster.cpus + cluster.gpus
    return RunShape(tasks, edges, devices, len(spec.policies))


def check_run_memory(spec: RunSpec, shape: RunShape, budget_mb: int) -> None:
    """Raise InvalidSpec, at the field that sets the number of tasks and naming what else to
    shrink, if the run's estimate exceeds `budget_mb`."""
    if shape.estimate_mb <= budget_mb:
        return
    field = _task_field(spec)
    edges = f", up to {shape.edges:,} dependencies" if shape.edges else ""
    raise InvalidSpec(
        f"this run needs about {shape.estimate_mb:,.0f} MB, more than the {budget_mb:,} MB a run "
        f"may use (HMS_RUN_MEMORY_MB): shrink workload.{field} ({shape.tasks:,} tasks{edges}), "
        f"the policies ({shape.policies}) or the cluster's devices ({shape.devices})",
        ("body", "workload", field),
    )


def _task_field(spec: RunSpec) -> str:
    if isinstance(spec.workload, TiledSpec):
        return "tiles"
    if isinstance(spec.workload, ExplicitSpec):
        return "compute"
    return "num_tasks" if hasattr(spec.workload, "num_tasks") else spec.workload.kind
