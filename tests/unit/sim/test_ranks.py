import numpy as np
import pytest

from app.sim import costs
from app.sim.ranks import mean_transfer_time, upward_rank
from tests.unit.sim.conftest import layered_problem, topcuoglu_problem


def test_mean_transfer_time_is_the_mean_over_ordered_pairs_of_distinct_devices():
    problem = layered_problem(60, ccr=3.0, cpus=3, gpus=2)
    m = problem.num_devices
    for edge in range(0, problem.workload.num_edges, 7):
        data = float(problem.workload.edge_data[edge])
        pairs = [
            costs.edge_transfer(problem.cluster, data, None, a)[b]
            for a in range(m)
            for b in range(m)
            if a != b
        ]
        assert mean_transfer_time(problem)[edge] == pytest.approx(np.mean(pairs))


def test_upward_rank_is_the_longest_path_to_an_exit_with_mean_costs():
    problem = topcuoglu_problem()
    rank = upward_rank(problem)
    assert rank[9] == pytest.approx(np.mean([21, 7, 16]))  # an exit task: its mean cost
    # Task 7 (index 6) has one child, task 10, over an edge of cost 17.
    assert rank[6] == pytest.approx(np.mean([7, 15, 11]) + 17 + rank[9])
