import numpy as np
import pytest

from app.sim.workload import InvalidWorkload, Workload

ONES = np.ones(4)


def dag(edges, n=4, **kw):
    return Workload.from_edges(np.ones(n), np.ones(n) / 2, np.ones(n), np.zeros(n), edges, **kw)


def test_edges_become_a_csr_of_parents_with_their_data():
    w = dag([(0, 2), (1, 2), (2, 3)], edge_data=np.array([5.0, 6.0, 7.0]))
    assert w.parents(2).tolist() == [0, 1] and w.parents(3).tolist() == [2]
    assert w.parents(0).size == 0
    assert w.edge_data[w.parent_ptr[2] : w.parent_ptr[3]].tolist() == [5.0, 6.0]
    child_ptr, child_idx, _ = w.children
    assert child_idx[child_ptr[0] : child_ptr[1]].tolist() == [2]


def test_topological_order_puts_parents_first():
    w = dag([(3, 0), (2, 3), (1, 2)])
    position = {task: i for i, task in enumerate(w.topological_order.tolist())}
    assert position[1] < position[2] < position[3] < position[0]


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ([(0, 1), (1, 2), (2, 0)], "cycle"),
        ([(0, 7)], "does not exist"),
        ([(1, 1)], "itself"),
        ([(0, 1), (0, 1)], "more than once"),
    ],
)
def test_malformed_dags_are_rejected_with_a_clear_message(edges, message):
    with pytest.raises(InvalidWorkload, match=message):
        dag(edges)


def test_invalid_task_arrays_are_rejected():
    with pytest.raises(InvalidWorkload, match="intensity"):
        Workload(size=ONES, intensity=ONES * 2, memory=ONES, arrival=ONES)
    with pytest.raises(InvalidWorkload, match="shape"):
        Workload(size=ONES, intensity=ONES[:2], memory=ONES, arrival=ONES)
    with pytest.raises(InvalidWorkload, match="NaN"):
        Workload(size=np.array([1.0, np.nan, 1, 1]), intensity=ONES / 2, memory=ONES, arrival=ONES)
    with pytest.raises(InvalidWorkload, match="exec_cost"):
        dag([], exec_cost=np.ones((3, 2)))
    with pytest.raises(InvalidWorkload, match="edge_cost"):
        dag([(0, 1)], exec_cost=np.ones((4, 2)), edge_cost=np.ones(2))
