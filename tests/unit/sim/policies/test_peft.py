import numpy as np
import pytest

from app.sim.decision import Decision, Rule
from app.sim.engine import simulate
from app.sim.policies.peft import Peft, oct_rank, optimistic_cost_table
from app.sim.problem import Problem
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


def reference_peft(problem: Problem) -> tuple[list[int], list[float], list[float]]:
    """PEFT as the paper states it, in plain Python: the OCT from the exit tasks back, rank_oct
    its row mean over the devices a task fits, and the device of least EFT + OCT."""
    graph = Graph.of(problem)
    m = problem.num_devices
    table = [[0.0] * m for _ in graph.times]
    for task in graph.reverse_topological():
        for p in range(m):
            worst = 0.0
            for child, edge in graph.children[task]:
                best = min(
                    table[child][w] + time + (mean_transfer(problem, edge) if w != p else 0.0)
                    for w, time in enumerate(graph.times[child])
                    if time is not None
                )
                worst = max(worst, best)
            table[task][p] = worst
    rank = []
    for task, times in enumerate(graph.times):
        fits = [p for p in range(m) if times[p] is not None]
        rank.append(sum(table[task][p] for p in fits) / len(fits))

    def least_optimistic_finish(task: int, options: list[tuple[int, float]]) -> int:
        return min(options, key=lambda option: (option[1] + table[task][option[0]], option[0]))[0]

    return list_schedule(problem, rank, least_optimistic_finish)


def test_peft_reproduces_the_papers_optimistic_cost_table_and_makespan_122_where_heft_gives_133():
    problem = arabnejad_problem()
    table = optimistic_cost_table(problem)
    # Arabnejad & Barbosa 2014, the OCT of their example graph and rank_oct = its row mean.
    assert table.tolist() == [
        [64, 68, 86], [42, 39, 42], [27, 41, 43], [42, 39, 50], [28, 37, 28],
        [42, 39, 44], [13, 16, 22], [13, 16, 33], [13, 16, 20], [0, 0, 0],
    ]  # fmt: skip
    assert oct_rank(problem, table).round(2).tolist() == [
        72.67, 41.0, 37.0, 43.67, 31.0, 41.67, 17.0, 20.67, 16.33, 0.0
    ]  # fmt: skip
    assert schedule_of(problem, "heft").end.max() == 133.0
    peft = schedule_of(problem, "peft")
    assert peft.end.max() == 122.0
    # The schedule: T1, T4, T2, T3, T7 on P1; T6, T8, T10 on P2; T5, T9 on P3.
    assert peft.device.tolist() == [0, 0, 0, 0, 2, 1, 0, 1, 2, 1]


def test_peft_agrees_with_a_plain_python_peft_on_topcuoglus_graph():
    problem = topcuoglu_problem()
    device, _, end = reference_peft(problem)
    s = schedule_of(problem, "peft")
    assert s.device.tolist() == device and s.end.tolist() == end


def test_exit_tasks_have_an_optimistic_cost_of_zero_and_independent_tasks_all_do():
    problem = layered_problem(120, seed=4)
    table = optimistic_cost_table(problem)
    exits = np.diff(problem.workload.children[0]) == 0
    assert (table[exits] == 0).all() and (table[~exits] > 0).all()
    independent = layered_problem(50, seed=4, width=1.0)
    assert not optimistic_cost_table(independent).any()


def test_on_independent_tasks_peft_is_insertion_based_eft_in_task_order():
    problem = synthetic_problem(800, arrival_rate=300.0)

    class InsertionEft(Peft):
        def decide(self, problem, rng):
            return Decision(Rule.EFT, insertion=True)

    peft = schedule_of(problem, "peft")
    eft = simulate(problem, InsertionEft(), np.random.default_rng(0))
    assert np.array_equal(peft.device, eft.device) and np.array_equal(peft.end, eft.end)


@pytest.mark.parametrize(
    ("n", "seed", "ccr", "cpus", "gpus"),
    [(60, 1, 0.5, 2, 1), (120, 2, 2.0, 3, 2), (200, 3, 0.1, 4, 2)],
)
def test_peft_places_every_task_where_a_plain_python_peft_does(n, seed, ccr, cpus, gpus):
    problem = layered_problem(n, seed=seed, ccr=ccr, cpus=cpus, gpus=gpus)
    device, start, end = reference_peft(problem)
    s = schedule_of(problem, "peft")
    assert s.device.tolist() == device
    assert s.start.tolist() == pytest.approx(start) and s.end.max() == pytest.approx(max(end))
