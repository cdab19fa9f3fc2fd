"""Workload generators: `synthetic` (online arrivals, optional dependencies) and `layered_dag`
(static random DAGs in the spirit of DAGGEN, with a communication-to-computation ratio knob).

Both are deterministic given the `numpy.random.Generator` passed in. Their tasks come from a mix:
a `KernelMix` (kernelmix.py: calls of a kernel profile's kernels, what every run uses, so the
truth is what the profile measured) or a `TaskMix` (abstract sizes in GFLOP with no kernel: the
engine's own tests and speed benchmark, where only the structure matters and every time is the
cost model's; the WfCommons and STG importers also draw their tasks' intensities from it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.sim.cluster import DEFAULT_CPU, DEFAULT_GPU
from app.sim.kernelmix import KernelMix, TaskDraw
from app.sim.workload import Workload


@dataclass(frozen=True)
class TaskMix:
    """Abstract tasks with no kernel: heavy-tailed sizes, bimodal intensity, memory that grows
    with size, categories k0..k7. No run's generated workload uses it (those draw kernel calls):
    the engine's tests and speed benchmark do, and the importers draw intensities from its
    bimodal mix. No profile measured such tasks, so they run as the cost model estimates them."""

    min_size: float = 1.0  # GFLOP; sizes are Pareto distributed above this
    size_tail: float = 1.8  # Pareto shape: smaller means heavier tail
    max_size: float = 2000.0  # GFLOP; caps the tail so one task cannot dominate a run
    gpu_friendly_share: float = 0.5  # weight of the high-intensity mode of the bimodal mix
    mb_per_gflop: float = 20.0  # memory grows with size, with log-normal noise
    memory_noise: float = 0.5  # sigma of that noise (natural log scale)
    max_memory: float = 24_000.0  # MB; above a default GPU's 16 GB, so some tasks fit only on CPUs
    categories: int = 8  # labels k0..k7, drawn uniformly

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(size, intensity, memory) for n tasks."""
        size = np.minimum((rng.pareto(self.size_tail, n) + 1.0) * self.min_size, self.max_size)
        gpu_friendly = rng.random(n) < self.gpu_friendly_share
        intensity = np.where(gpu_friendly, rng.beta(8.0, 1.5, n), rng.beta(1.5, 8.0, n))
        noise = rng.lognormal(mean=0.0, sigma=self.memory_noise, size=n)
        memory = np.clip(size * self.mb_per_gflop * noise, 1.0, self.max_memory)
        return size, intensity, memory

    @property
    def category_names(self) -> tuple[str, ...]:
        return tuple(f"k{c}" for c in range(self.categories))

    def categorized(self, workload: Workload, rng: np.random.Generator) -> Workload:
        """`workload` with each task's kind of kernel drawn uniformly (drawn last, so the other
        attributes do not depend on how many categories there are)."""
        category = rng.integers(0, self.categories, workload.num_tasks).astype(np.int32)
        return workload.evolve(category=category, category_names=self.category_names)


Mix = TaskMix | KernelMix


def _draw(mix: Mix, n: int, rng: np.random.Generator) -> TaskDraw | None:
    """A kernel mix's tasks, drawn first; None for a TaskMix (its sizes come from `_sizes`)."""
    return mix.draw(n, rng) if isinstance(mix, KernelMix) else None


def _sizes(
    mix: Mix, drawn: TaskDraw | None, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if drawn is not None:
        return drawn.size, drawn.intensity, drawn.memory
    assert isinstance(mix, TaskMix)
    return mix.draw(n, rng)


def _finish(
    mix: Mix, drawn: TaskDraw | None, workload: Workload, rng: np.random.Generator
) -> Workload:
    """The workload with its tasks' categories (and tile sizes for a kernel mix)."""
    if drawn is None:
        assert isinstance(mix, TaskMix)
        return mix.categorized(workload, rng)
    return workload.evolve(
        category=drawn.category, category_names=drawn.category_names, tile_size=drawn.tile_size
    )


@dataclass(frozen=True)
class SyntheticParams:
    num_tasks: int
    arrival_rate: float = 100.0  # tasks per second (Poisson process)
    mix: Mix = TaskMix()
    # Dependencies: each task, with this probability, depends on 1..max_parents of the
    # `lookback` tasks that arrived just before it, and receives `output_share` of each
    # parent's data.
    dependency_probability: float = 0.0
    max_parents: int = 2
    lookback: int = 16
    output_share: float = 0.5


def synthetic_workload(params: SyntheticParams, rng: np.random.Generator) -> Workload:
    """Poisson arrivals of tasks from `params.mix`, optionally with bounded look-back deps."""
    n = params.num_tasks
    drawn = _draw(params.mix, n, rng)
    size, intensity, memory = _sizes(params.mix, drawn, n, rng)
    arrival = np.cumsum(rng.exponential(1.0 / params.arrival_rate, n))
    if params.dependency_probability <= 0 or n < 2:
        workload = Workload(size=size, intensity=intensity, memory=memory, arrival=arrival)
    else:
        edges = _lookback_edges(n, params, rng)
        data = memory[edges[:, 0]] * params.output_share
        workload = Workload.from_edges(size, intensity, memory, arrival, edges, edge_data=data)
    return _finish(params.mix, drawn, workload, rng)


def _lookback_edges(n: int, params: SyntheticParams, rng: np.random.Generator) -> np.ndarray:
    has_parents = rng.random(n) < params.dependency_probability
    has_parents[0] = False
    children = np.flatnonzero(has_parents)
    window = np.minimum(children, params.lookback)  # how many earlier tasks each may pick from
    counts = np.minimum(rng.integers(1, params.max_parents + 1, children.size), window)
    pairs: list[tuple[int, int]] = []
    for child, span, count in zip(children.tolist(), window.tolist(), counts.tolist(), strict=True):
        offsets = rng.choice(span, size=count, replace=False) + 1
        pairs.extend((child - int(offset), child) for offset in offsets)
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


@dataclass(frozen=True)
class LayeredDagParams:
    """A random layered DAG (after DAGGEN, Suter & Hunold).

    width: in (0, 1]; the mean number of tasks per level is num_tasks ** width (1: one level,
      fully parallel; small: long chains).
    regularity: in [0, 1]; 1 gives every level the mean size, 0 lets sizes vary by +-100 %.
    density: in (0, 1]; the share of candidate parents a task connects to (at least one).
    jump: >= 1; parents come from up to `jump` levels above.
    ccr: communication-to-computation ratio: an edge carries data that takes `ccr` times its
      parent's reference execution time (one default CPU core) to move over a default GPU link.
    """

    num_tasks: int
    width: float = 0.5
    regularity: float = 0.5
    density: float = 0.3
    jump: int = 1
    ccr: float = 0.5
    mix: Mix = TaskMix()


def layered_dag(params: LayeredDagParams, rng: np.random.Generator) -> Workload:
    n = params.num_tasks
    levels = _level_sizes(n, params, rng)
    first = np.concatenate([[0], np.cumsum(levels)])
    drawn = _draw(params.mix, n, rng)
    size, intensity, memory = _sizes(params.mix, drawn, n, rng)
    pairs: list[tuple[int, int]] = []
    for level in range(1, len(levels)):
        low = first[max(0, level - params.jump)]
        candidates = np.arange(low, first[level])
        for task in range(first[level], first[level + 1]):
            count = max(1, round(params.density * candidates.size))
            parents = rng.choice(candidates, size=min(count, candidates.size), replace=False)
            pairs.extend((int(parent), task) for parent in parents)
    edges = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    reference_time = size[edges[:, 0]] / DEFAULT_CPU.speed  # seconds on one default core
    edge_data = params.ccr * reference_time * DEFAULT_GPU.bandwidth  # MB
    workload = Workload.from_edges(size, intensity, memory, np.zeros(n), edges, edge_data=edge_data)
    return _finish(params.mix, drawn, workload, rng)


def _level_sizes(n: int, params: LayeredDagParams, rng: np.random.Generator) -> np.ndarray:
    mean = max(1.0, n**params.width)
    spread = 1.0 - params.regularity
    sizes: list[int] = []
    while sum(sizes) < n:
        drawn = mean * rng.uniform(1.0 - spread, 1.0 + spread)
        sizes.append(min(max(1, round(drawn)), n - sum(sizes)))
    return np.array(sizes, dtype=np.int64)
