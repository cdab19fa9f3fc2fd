import math

import numpy as np
import pytest

from app.sim.cluster import Cluster
from app.sim.policies.cpop import critical_path, critical_path_device
from app.sim.problem import Problem
from app.sim.ranks import downward_rank, upward_rank
from app.sim.workload import Workload
from tests.unit.sim.conftest import (
    arabnejad_problem,
    layered_problem,
    synthetic_problem,
    topcuoglu_problem,
)
from tests.unit.sim.policies.list_scheduling import (
    Graph,
    list_schedule,
    mean_transfer,
    schedule_of,
)


def reference_cpop(problem: Problem) -> tuple[list[int], list[float], list[float]]:
    """CPOP as the paper states it, in plain Python: priority = rank_u + rank_d with mean costs,
    the critical path walked from the entry of largest priority through the first child whose
    priority equals it, on the device of least summed cost; the other tasks by EFT."""
    graph = Graph.of(problem)
    n = len(graph.times)
    mean = []
    for times in graph.times:
        fits = [time for time in times if time is not None]
        mean.append(sum(fits) / len(fits))
    order = graph.reverse_topological()
    up, down = [0.0] * n, [0.0] * n
    for task in order:
        up[task] = mean[task] + max(
            (mean_transfer(problem, edge) + up[child] for child, edge in graph.children[task]),
            default=0.0,
        )
    for task in reversed(order):
        down[task] = max(
            (down[p] + mean[p] + mean_transfer(problem, edge) for p, edge in graph.parents[task]),
            default=0.0,
        )
    priority = [up[t] + down[t] for t in range(n)]
    length = max(priority)
    on_path = [math.isclose(p, length, rel_tol=1e-9) for p in priority]
    entries = [t for t in range(n) if not graph.parents[t]]
    task = max(entries, key=lambda t: (priority[t], -t))
    path = [task]
    while True:
        following = sorted(child for child, _ in graph.children[task] if on_path[child])
        if not following:
            break
        task = following[0]
        path.append(task)
    sums = []
    for d in range(problem.num_devices):
        times = [graph.times[t][d] for t in path]
        sums.append(math.inf if None in times else sum(times))  # type: ignore[arg-type]
    pinned = min(range(problem.num_devices), key=lambda d: (sums[d], d))
    cp = set(path) if math.isfinite(sums[pinned]) else set()

    def critical_path_or_earliest_finish(task: int, options: list[tuple[int, float]]) -> int:
        if task in cp:
            return pinned
        return min(options, key=lambda option: (option[1], option[0]))[0]

    return list_schedule(problem, priority, critical_path_or_earliest_finish)


def test_cpop_on_the_topcuoglu_example_gives_the_papers_makespan_86():
    problem = topcuoglu_problem()
    # Topcuoglu, Hariri & Wu 2002, Table 2: rank_u + rank_d; the critical path n1, n2, n9, n10
    # (length 108) runs fastest on P2 (54 against 66 on P1 and 63 on P3).
    priority = upward_rank(problem) + downward_rank(problem)
    assert priority.round(2).tolist() == [
        108.0, 108.0, 105.0, 102.0, 93.0, 90.33, 105.0, 102.33, 108.0, 108.0
    ]  # fmt: skip
    s = schedule_of(problem, "cpop")
    assert s.end.max() == 86.0
    assert s.device[[0, 1, 8, 9]].tolist() == [1, 1, 1, 1]
    device, start, end = reference_cpop(problem)
    assert (s.device.tolist(), s.start.tolist(), s.end.tolist()) == (device, start, end)


def test_downward_rank_is_the_longest_path_from_an_entry_excluding_the_task():
    problem = topcuoglu_problem()
    rank = downward_rank(problem)
    assert rank[0] == 0.0  # the entry task
    # Task 2 (index 1) has one parent, task 1, over an edge of cost 18; task 1 costs 13 on mean.
    assert rank[1] == pytest.approx(np.mean([14, 16, 9]) + 18)
    assert rank.round(3).tolist() == [
        0.0, 31.0, 25.0, 22.0, 24.0, 27.0, 62.333, 66.667, 63.667, 93.333
    ]  # fmt: skip


def test_cpop_agrees_with_a_plain_python_cpop_on_the_peft_papers_graph():
    problem = arabnejad_problem()
    device, _, end = reference_cpop(problem)
    s = schedule_of(problem, "cpop")
    assert s.device.tolist() == device and s.end.tolist() == end


@pytest.mark.parametrize(
    ("n", "seed", "ccr", "cpus", "gpus"),
    [(60, 1, 0.5, 2, 1), (120, 2, 2.0, 3, 2), (200, 3, 0.1, 4, 2)],
)
def test_cpop_places_every_task_where_a_plain_python_cpop_does(n, seed, ccr, cpus, gpus):
    problem = layered_problem(n, seed=seed, ccr=ccr, cpus=cpus, gpus=gpus)
    device, start, end = reference_cpop(problem)
    s = schedule_of(problem, "cpop")
    assert s.device.tolist() == device
    assert s.start.tolist() == pytest.approx(start) and s.end.max() == pytest.approx(max(end))


def test_cpop_schedules_an_empty_workload():
    none = np.zeros(0)
    workload = Workload(size=none, intensity=none, memory=none, arrival=none)
    problem = Problem.build(workload, Cluster.homogeneous_kinds(1, 1))
    assert schedule_of(problem, "cpop").device.size == 0


def test_on_independent_tasks_the_critical_path_is_the_longest_task_on_its_fastest_device():
    problem = synthetic_problem(500)
    priority = upward_rank(problem) + downward_rank(problem)
    longest = int(np.argmax(priority))
    assert critical_path(problem, priority).tolist() == [longest]
    fastest = np.where(problem.feasible[longest], problem.exec_time[longest], np.inf).argmin()
    assert critical_path_device(problem, np.array([longest])) == fastest
    assert schedule_of(problem, "cpop").device[longest] == fastest
