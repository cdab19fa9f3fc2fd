"""Workloads as struct-of-arrays, with dependencies as a DAG in CSR form.

Units: `size` in GFLOP of work, `memory` in MB of input data that must be resident on the device
that runs the task, `arrival` in seconds since the start of the simulation. `intensity` in [0, 1]
is the share of a task's work that is data-parallel: that share runs at a GPU's full rate, the
rest at its much lower scalar rate (see costs.py).

Dependencies: the parents of task i are `parent_idx[parent_ptr[i]:parent_ptr[i + 1]]`, and
`edge_data` (MB) is what each of those parents hands to i. A workload may also carry *explicit
costs*, as the scheduling literature states its problems: `exec_cost[i, d]` seconds for task i on
device d (or on device kind d when it has two columns: CPU, GPU) and `edge_cost[e]` seconds to move
edge e between two different devices. Explicit costs replace the cost model entirely.

Categories: `category[i]` indexes `category_names`, the kind of kernel task i runs (a WfCommons
task's category, a tiled DAG's or a profile-drawn task's kernel). Every policy may see it. When
the tasks call the kernels of a kernel profile, `tile_size[i]` is the tile edge task i works on,
and the simulated hardware runs each (kernel, tile size) as the profile measured it (measured.py),
which is what a learned model can find.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

#: Fields that make up the DAG (or depend on its edges): changing one needs a full check.
_DAG_FIELDS = frozenset({"parent_ptr", "parent_idx", "edge_data", "exec_cost", "edge_cost"})

#: The category of tasks whose source names none.
DEFAULT_CATEGORY = "default"


class InvalidWorkload(ValueError):
    """The workload's arrays or its DAG are malformed (cycles, dangling ids, bad values)."""


@dataclass(frozen=True)
class Workload:
    size: np.ndarray
    intensity: np.ndarray
    memory: np.ndarray
    arrival: np.ndarray
    parent_ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    parent_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    edge_data: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    exec_cost: np.ndarray | None = None
    edge_cost: np.ndarray | None = None
    category: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    category_names: tuple[str, ...] = (DEFAULT_CATEGORY,)
    #: The tile edge b each task's kernel works on, when its category names a kernel of a kernel
    #: profile (tiled DAGs, workloads drawn from a profile: kernelmix.py); None otherwise.
    tile_size: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.size.shape[0]
        if self.parent_ptr.shape == (1,) and n:
            object.__setattr__(self, "parent_ptr", np.zeros(n + 1, dtype=np.int64))
        if self.category.shape == (0,) and n:
            object.__setattr__(self, "category", np.zeros(n, dtype=np.int32))
        self._check_task_arrays(n)
        self._check_categories(n)
        self._check_dag(n)
        self._check_explicit_costs(n)

    def _check_categories(self, n: int) -> None:
        if self.category.shape != (n,):
            raise InvalidWorkload(
                f"workload.category has shape {self.category.shape}, expected ({n},)"
            )
        if not self.category_names or len(set(self.category_names)) != len(self.category_names):
            raise InvalidWorkload("category names must be given, each once")
        if n and (self.category.min() < 0 or self.category.max() >= len(self.category_names)):
            raise InvalidWorkload("a task's category is not one of the category names")

    def _check_task_arrays(self, n: int) -> None:
        for name in ("size", "intensity", "memory", "arrival"):
            array = getattr(self, name)
            if array.shape != (n,):
                raise InvalidWorkload(f"workload.{name} has shape {array.shape}, expected ({n},)")
            if not np.all(np.isfinite(array)):
                raise InvalidWorkload(f"workload.{name} contains NaN or infinite values")
        if n and (self.size.min() < 0 or self.memory.min() < 0 or self.arrival.min() < 0):
            raise InvalidWorkload("task sizes, memory and arrival times must be >= 0")
        if n and (self.intensity.min() < 0 or self.intensity.max() > 1):
            raise InvalidWorkload("task intensity must lie in [0, 1]")
        if self.tile_size is not None:
            if self.tile_size.shape != (n,) or self.tile_size.dtype != np.int64:
                raise InvalidWorkload(f"workload.tile_size must be int64 of shape ({n},)")
            if n and self.tile_size.min() < 1:
                raise InvalidWorkload("tile sizes must be >= 1")

    def _check_dag(self, n: int) -> None:
        ptr, idx = self.parent_ptr, self.parent_idx
        if (
            ptr.shape != (n + 1,)
            or ptr[0] != 0
            or ptr[-1] != idx.shape[0]
            or np.any(np.diff(ptr) < 0)
        ):
            raise InvalidWorkload("parent_ptr is not a CSR index over parent_idx")
        if self.edge_data.shape != idx.shape:
            raise InvalidWorkload("edge_data needs one value per edge")
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = int(idx[(idx < 0) | (idx >= n)][0])
            raise InvalidWorkload(f"a dependency names task {bad}, which does not exist")
        if idx.size and (not np.all(np.isfinite(self.edge_data)) or self.edge_data.min() < 0):
            raise InvalidWorkload("edge data volumes must be finite and >= 0")
        if idx.size and np.any(idx == np.repeat(np.arange(n), np.diff(ptr))):
            raise InvalidWorkload("a task cannot depend on itself")
        _ = self.topological_order  # computing it raises on a cycle

    def _check_explicit_costs(self, n: int) -> None:
        if self.exec_cost is not None:
            cost = self.exec_cost
            if cost.ndim != 2 or cost.shape[0] != n or cost.shape[1] < 1:
                raise InvalidWorkload(f"exec_cost must have shape ({n}, devices), got {cost.shape}")
            if not np.all(np.isfinite(cost)) or cost.min() < 0:
                raise InvalidWorkload("explicit execution costs must be finite and >= 0")
        if self.edge_cost is not None:
            if self.edge_cost.shape != self.parent_idx.shape:
                raise InvalidWorkload("edge_cost needs one value per edge")
            if not np.all(np.isfinite(self.edge_cost)) or (
                self.edge_cost.size and self.edge_cost.min() < 0
            ):
                raise InvalidWorkload("explicit communication costs must be finite and >= 0")

    @property
    def num_tasks(self) -> int:
        return int(self.size.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.parent_idx.shape[0])

    @property
    def has_dependencies(self) -> bool:
        return self.num_edges > 0

    @property
    def explicit(self) -> bool:
        return self.exec_cost is not None

    def parents(self, task: int) -> np.ndarray:
        return self.parent_idx[self.parent_ptr[task] : self.parent_ptr[task + 1]]

    @cached_property
    def children(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The reverse CSR: (child_ptr, child_idx, edge id of each child entry)."""
        n = self.num_tasks
        child_of_edge = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.parent_ptr))
        order = np.argsort(self.parent_idx, kind="stable")
        child_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.parent_idx, minlength=n), out=child_ptr[1:])
        return child_ptr, child_of_edge[order], order

    @cached_property
    def topological_order(self) -> np.ndarray:
        """Kahn's algorithm; raises InvalidWorkload if the dependencies contain a cycle."""
        n = self.num_tasks
        if not self.has_dependencies:
            return np.arange(n, dtype=np.int64)
        child_ptr, child_idx, _ = self.children
        pending = np.diff(self.parent_ptr).astype(np.int64)
        order = np.empty(n, dtype=np.int64)
        frontier = list(np.flatnonzero(pending == 0)[::-1])
        count = 0
        while frontier:
            task = frontier.pop()
            order[count] = task
            count += 1
            for child in child_idx[child_ptr[task] : child_ptr[task + 1]].tolist():
                pending[child] -= 1
                if pending[child] == 0:
                    frontier.append(child)
        if count != n:
            stuck = int(np.flatnonzero(pending > 0)[0])
            raise InvalidWorkload(f"the dependencies contain a cycle (through task {stuck})")
        return order

    @classmethod
    def from_edges(
        cls,
        size: np.ndarray,
        intensity: np.ndarray,
        memory: np.ndarray,
        arrival: np.ndarray,
        edges: Sequence[tuple[int, int]] | np.ndarray,
        edge_data: np.ndarray | None = None,
        exec_cost: np.ndarray | None = None,
        edge_cost: np.ndarray | None = None,
        category: np.ndarray | None = None,
        category_names: Sequence[str] = (DEFAULT_CATEGORY,),
        tile_size: np.ndarray | None = None,
    ) -> Workload:
        """Build the CSR from (parent, child) pairs; per-edge arrays follow the pairs' order."""
        n = int(np.asarray(size).shape[0])
        pairs = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        data = np.zeros(len(pairs)) if edge_data is None else np.asarray(edge_data, float)
        if data.shape != (len(pairs),):
            raise InvalidWorkload("edge data needs one value per edge")
        if edge_cost is not None and np.shape(edge_cost) != (len(pairs),):
            raise InvalidWorkload("edge_cost needs one value per edge")
        if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
            bad = int(pairs[(pairs < 0) | (pairs >= n)][0])
            raise InvalidWorkload(f"an edge names task {bad}, which does not exist")
        if len(np.unique(pairs, axis=0)) != len(pairs):
            raise InvalidWorkload("an edge appears more than once")
        order = np.lexsort((pairs[:, 0], pairs[:, 1])) if pairs.size else np.zeros(0, np.int64)
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(pairs[:, 1], minlength=n), out=ptr[1:])
        return cls(
            size=np.asarray(size, float),
            intensity=np.asarray(intensity, float),
            memory=np.asarray(memory, float),
            arrival=np.asarray(arrival, float),
            parent_ptr=ptr,
            parent_idx=pairs[order, 0].copy(),
            edge_data=data[order],
            exec_cost=None if exec_cost is None else np.asarray(exec_cost, float),
            edge_cost=None if edge_cost is None else np.asarray(edge_cost, float)[order],
            category=np.zeros(n, np.int32) if category is None else np.asarray(category, np.int32),
            category_names=tuple(category_names),
            tile_size=None if tile_size is None else np.asarray(tile_size, np.int64),
        )

    def evolve(self, **changes: Any) -> Workload:
        """`dataclasses.replace` for task attributes (arrival, category, ...): the DAG is the same,
        so it is not checked again and what was derived from it (the topological order, the
        children) is kept — rebuilding them costs about a second per 500k tasks."""
        if changes.keys() & _DAG_FIELDS:
            return replace(self, **changes)
        evolved = object.__new__(Workload)
        evolved.__dict__.update(self.__dict__)
        evolved.__dict__.update(changes)
        evolved._check_task_arrays(self.num_tasks)
        evolved._check_categories(self.num_tasks)
        return evolved

    def with_categories(self, labels: Sequence[str]) -> Workload:
        """The same workload with task i in the category named labels[i] (names in order of
        first appearance)."""
        names = list(dict.fromkeys(labels)) or [DEFAULT_CATEGORY]
        code = {name: index for index, name in enumerate(names)}
        category = np.array([code[label] for label in labels], dtype=np.int32)
        return self.evolve(category=category, category_names=tuple(names))
