"""HEFT's upward rank and CPOP's downward rank (Topcuoglu, Hariri & Wu, IEEE TPDS 2002):

    rank_u(i) = w_i + max over children j of (c_ij + rank_u(j))
    rank_d(j) = max over parents i of (rank_d(i) + w_i + c_ij), 0 for entry tasks

with w_i the task's mean execution time over the devices it fits and c_ij the edge's mean
transfer time over pairs of distinct devices (the given cost, with explicit costs). rank_u is
the length of the longest path from i to an exit task (the larger, the more urgent), rank_d that
of the longest path from an entry task to i, i excluded: their sum is the length of the longest
path through i, the critical path's length for the tasks on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from app.sim.cluster import DeviceKind
from app.sim.problem import Problem
from app.sim.workload import Workload


def mean_execution_time(problem: Problem, exec_time: np.ndarray | None = None) -> np.ndarray:
    """Per task, the mean of `exec_time` (default: the true times) over the devices it fits."""
    feasible = problem.feasible
    times = problem.exec_time if exec_time is None else exec_time
    total = np.where(feasible, times, 0.0).sum(axis=1)
    return total / feasible.sum(axis=1)


def mean_transfer_time(problem: Problem) -> np.ndarray:
    """Per edge, the mean over ordered pairs of distinct devices (0 with a single device)."""
    workload, cluster = problem.workload, problem.cluster
    if workload.edge_cost is not None:
        return workload.edge_cost
    m = cluster.num_devices
    if m < 2:
        return np.zeros(workload.num_edges)
    gpu = cluster.kind == DeviceKind.GPU
    # A GPU end of a transfer costs L + D / B; a CPU end costs nothing (host memory). Over all
    # m (m - 1) ordered pairs each device is a source m - 1 times and a target m - 1 times, so
    # the mean is 2 / m x the sum over GPUs, computed without an edges x devices temporary.
    latencies = float(cluster.latency[gpu].sum())
    inverse_bandwidths = float((1.0 / cluster.bandwidth[gpu]).sum())
    return 2.0 * (latencies + workload.edge_data * inverse_bandwidths) / m


def backward(workload: Workload) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Each task that has children, exit side first (reverse topological order), with its
    children and the indices of the edges to them: the walk of every rank computed from the
    exit tasks back (rank_u here, PEFT's optimistic cost table)."""
    child_ptr, child_idx, child_edge = workload.children
    for task in workload.topological_order[::-1].tolist():
        low, high = child_ptr[task], child_ptr[task + 1]
        if high > low:
            yield task, child_idx[low:high], child_edge[low:high]


def upward_rank(problem: Problem, exec_time: np.ndarray | None = None) -> np.ndarray:
    """rank_u of every task; `exec_time` replaces the true times (a policy's estimates)."""
    workload = problem.workload
    rank = mean_execution_time(problem, exec_time)
    if not workload.has_dependencies:
        return rank
    transfer = mean_transfer_time(problem)
    for task, children, edges in backward(workload):
        rank[task] += float(np.max(transfer[edges] + rank[children]))
    return rank


def downward_rank(problem: Problem, exec_time: np.ndarray | None = None) -> np.ndarray:
    """rank_d of every task; `exec_time` replaces the true times (a policy's estimates)."""
    workload = problem.workload
    rank = np.zeros(workload.num_tasks)
    if not workload.has_dependencies:
        return rank
    mean = mean_execution_time(problem, exec_time)
    transfer = mean_transfer_time(problem)
    parent_ptr, parent_idx = workload.parent_ptr, workload.parent_idx
    for task in workload.topological_order.tolist():
        low, high = parent_ptr[task], parent_ptr[task + 1]
        if high > low:
            parents = parent_idx[low:high]
            rank[task] = float(np.max(rank[parents] + mean[parents] + transfer[low:high]))
    return rank
