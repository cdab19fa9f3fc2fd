"""Lower bounds on the makespan, and the fluid relaxation they share with the offered load.

**Fluid time.** Relax a schedule to fluid work: each task i may be cut into shares x_ik >= 0
(sum over groups k = 1) done on the device groups k (identical devices: same model, same true
times), and a group of n_k devices does t_ik x_ik seconds of share x_ik using any of its devices
in parallel. The least time in which the groups can do all the work is

    F = min over x of max over k of (sum_i x_ik t_ik) / n_k.

With two groups (CPU cores and GPUs, as every cluster a spec describes) the optimum gives the
GPUs a prefix of the tasks sorted by t_ig / t_ic, the task at the boundary shared so both groups
finish together (an exchange argument: swapping any GPU share for a later task's never lowers the
maximum). With more groups (an explicit cost table with a column per device) we use the weaker
F' = sum_i min_d t_id / m, where m is the number of devices: still <= F (every share costs at
least the task's fastest time, and m devices do at most m seconds of work per second).

**Work bound: makespan >= F.** Take any schedule the engine produces and let x_ik be the share of
task i done on group k: 1 for the group of the device a whole task ran on; f on the GPU's group
and 1 - f on the core's for a split at GPU share f. A whole task holds its device for t_id; a
split holds the GPU *and* the core for T(f) = max(L + f (t_ig - L), (1 - f) t_ic) (costs.py),
and since L + f (t_ig - L) = f t_ig + (1 - f) L >= f t_ig, both parts of T(f) satisfy
T(f) >= f t_ig and T(f) >= (1 - f) t_ic. So group k is busy at least sum_i x_ik t_ik seconds in
all, spread over n_k devices each busy one task at a time and never after the makespan:
makespan >= (sum_i x_ik t_ik) / n_k for every k, hence >= F, the minimum over all x.

**Path bound: makespan >= the longest chain.** A task ends no earlier than its arrival plus its
fastest possible time (whole on the best device, or the best split: T is the max of an increasing
and a decreasing function of f, so clip(f*) is its minimum), and no earlier than each parent's end
plus that same time (transfers are >= 0). Following the longest such chain gives a time no task,
and so no schedule, beats.

`makespan_lower_bound` is the larger of the two, on the true times: no policy can beat it.
"""

from __future__ import annotations

import numpy as np

from app.sim.problem import Problem


def fluid_time(exec_time: np.ndarray, feasible: np.ndarray, groups: list[np.ndarray]) -> float:
    """F (or F' with more than two groups), seconds: see the module docstring. `groups` are the
    device indices of identical devices, `exec_time` seconds (tasks, devices)."""
    times = np.where(feasible, exec_time, np.inf)
    if len(groups) == 1:
        return float(times[:, groups[0][0]].sum() / groups[0].size)
    if len(groups) > 2:
        return float(times.min(axis=1).sum() / exec_time.shape[1])
    first, second = groups
    return _two_group_fluid_time(
        times[:, first[0]], times[:, second[0]], float(first.size), float(second.size)
    )


def _two_group_fluid_time(a: np.ndarray, b: np.ndarray, count_a: float, count_b: float) -> float:
    """min over x in [0, 1]^n of max(sum x a / count_a, sum (1 - x) b / count_b); a task with an
    infinite time on one group goes to the other."""
    only_a, only_b = ~np.isfinite(b), ~np.isfinite(a)
    base_a = float(a[only_a].sum()) / count_a
    base_b = float(b[only_b].sum()) / count_b
    free = ~(only_a | only_b)
    a, b = a[free] / count_a, b[free] / count_b  # seconds of each group's time per task
    order = np.argsort(a / np.maximum(b, 1e-300), kind="stable")
    a, b = a[order], b[order]
    # load_a[k]: group a does tasks < k; load_b[k]: group b does tasks >= k.
    load_a = base_a + np.concatenate([[0.0], np.cumsum(a)])
    load_b = base_b + np.concatenate([np.cumsum(b[::-1])[::-1], [0.0]])
    k = int(np.searchsorted(load_a - load_b, 0.0, side="left"))  # first k with load_a >= load_b
    if k == 0 or k == load_a.size:
        return float(max(load_a[min(k, load_a.size - 1)], load_b[min(k, load_a.size - 1)]))
    # Task k - 1 is shared: share x of it on group a makes both loads equal.
    task = k - 1
    x = (load_b[k] + b[task] - load_a[task]) / (a[task] + b[task])
    return float(load_a[task] + x * a[task])


def work_bound(problem: Problem) -> float:
    """F on the problem's times: the work bound (module docstring), seconds."""
    groups = _time_groups(problem)
    return fluid_time(problem.exec_time, problem.feasible, groups)


def path_bound(problem: Problem) -> float:
    """The longest chain of arrivals and fastest possible times (module docstring), seconds."""
    workload = problem.workload
    fastest = problem.min_time
    finish = workload.arrival + fastest
    if workload.has_dependencies:
        for task in workload.topological_order.tolist():
            parents = workload.parents(task)
            if parents.size:
                start = max(float(workload.arrival[task]), float(finish[parents].max()))
                finish[task] = start + fastest[task]
    return float(finish.max()) if finish.size else 0.0


def makespan_lower_bound(problem: Problem) -> float:
    """No schedule of `problem` (its times taken as the truth) ends before this, seconds."""
    return max(work_bound(problem), path_bound(problem))


def _time_groups(problem: Problem) -> list[np.ndarray]:
    """Devices whose columns of `exec_time` are identical by construction: the device models of
    the cost model, or each device alone for an explicit table with a column per device."""
    devices = np.arange(problem.num_devices)
    cost = problem.workload.exec_cost
    if cost is not None and cost.shape[1] == problem.num_devices:
        return [devices[[d]] for d in devices]
    if cost is not None:  # two columns, CPU and GPU
        kind = problem.cluster.kind
        return [group for group in (devices[kind == 0], devices[kind == 1]) if group.size]
    return problem.cluster.model_groups(devices)
