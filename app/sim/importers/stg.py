"""Workloads from the Standard Task Graph Set (STG, Kasahara lab, Waseda University).

An STG file lists a DAG in topological order, one task per line:

    4               <- N, the number of real tasks
    0  0  0         <- task id, cost, number of predecessors, the predecessors' ids
    1  7  1  0
    ...
    5  0  2  3  4   <- task N + 1, the dummy exit
    # anything after the N + 2 task lines is comment

Task 0 is a dummy entry and task N + 1 a dummy exit, both of cost 0. They are kept (as tasks of
size 0), so the workload has N + 2 tasks and an STG id is a task index. Some sets add
communication costs by listing predecessors as (id, cost) pairs; each line is read as plain or as
pairs from its token count. Blank lines and lines starting with '#' are skipped. A predecessor
must be an earlier task, which is also why an STG graph cannot contain a cycle.

Units: a cost is in time units, taken as seconds on one reference core, so size (GFLOP) = cost x
reference_speed. A communication cost is likewise seconds over a default GPU link, so its edge
carries cost x DEFAULT_GPU.bandwidth MB. The format has neither intensity nor memory, so both come
from `mix`, drawn by a generator seeded with `intensity_seed`: intensity from its bimodal
distribution, memory at its MB per GFLOP (noise included) applied to the task's real size, capped
at `mix.max_memory`. Arrival is 0 s for every task.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from app.sim.cluster import DEFAULT_CPU, DEFAULT_GPU
from app.sim.generators import TaskMix
from app.sim.importers.inline import MAX_TASKS
from app.sim.workload import InvalidWorkload, Workload

_DEFAULT_MIX = TaskMix()

#: One STG line: (line number, its whitespace-separated tokens).
_Line = tuple[int, list[str]]


def workload_from_stg(
    text: str,
    *,
    reference_speed: float = DEFAULT_CPU.speed,
    intensity_seed: int = 0,
    mix: TaskMix = _DEFAULT_MIX,
    max_tasks: int = MAX_TASKS,
) -> Workload:
    """The DAG of an STG file's text; errors name the line (counted from 1) at fault."""
    lines = _content_lines(text)
    count = _task_count(next(lines, None), max_tasks)
    cost = np.zeros(count)
    pairs: list[tuple[int, int]] = []
    communication: list[float] = []
    for task in range(count):
        line = next(lines, None)
        if line is None:
            raise InvalidWorkload(
                f"the header announces {count - 2} tasks, so {count} task lines with the dummy "
                f"entry and exit, but only {task} follow"
            )
        cost[task], predecessors = _task_line(line, task)
        pairs.extend((parent, task) for parent, _ in predecessors)
        communication.extend(float(comm) for _, comm in predecessors)
    size = cost * reference_speed
    intensity, memory = _drawn_attributes(size, intensity_seed, mix)
    edge_data = np.array(communication) * DEFAULT_GPU.bandwidth
    return Workload.from_edges(size, intensity, memory, np.zeros(count), pairs, edge_data=edge_data)


def _content_lines(text: str) -> Iterator[_Line]:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped.split()


def _task_count(header: _Line | None, max_tasks: int) -> int:
    """N + 2: the real tasks the header announces, plus the dummy entry and exit."""
    if header is None:
        raise InvalidWorkload("the STG text is empty: its first line should be the task count")
    number, tokens = header
    if len(tokens) != 1:
        raise InvalidWorkload(f"line {number}: expected the task count alone, found {tokens}")
    real = _integer(tokens[0], number)
    if real < 0 or real + 2 > max_tasks:
        raise InvalidWorkload(f"line {number}: task count {real} is not in [0, {max_tasks - 2}]")
    return real + 2


def _task_line(line: _Line, expected: int) -> tuple[int, list[tuple[int, int]]]:
    """(cost, [(predecessor, communication cost), ...]) of one task line."""
    number, tokens = line
    values = [_integer(token, number) for token in tokens]
    if len(values) < 3:
        raise InvalidWorkload(f"line {number}: expected 'id cost predecessors ...', got {tokens}")
    task, cost, declared, rest = values[0], values[1], values[2], values[3:]
    if task != expected:
        raise InvalidWorkload(
            f"line {number}: expected task {expected}, found {task} (ids run 0 to N + 1 in order)"
        )
    if cost < 0 or declared < 0:
        raise InvalidWorkload(f"line {number}: cost and predecessor count must be >= 0")
    if len(rest) == declared:
        predecessors = [(parent, 0) for parent in rest]
    elif len(rest) == 2 * declared:
        predecessors = list(zip(rest[0::2], rest[1::2], strict=True))
    else:
        raise InvalidWorkload(
            f"line {number}: task {task} declares {declared} predecessors but {len(rest)} numbers "
            f"follow ({declared}, or {2 * declared} as (predecessor, communication cost) pairs)"
        )
    _check_predecessors(number, task, predecessors)
    return cost, predecessors


def _check_predecessors(number: int, task: int, predecessors: list[tuple[int, int]]) -> None:
    seen: set[int] = set()
    for parent, comm in predecessors:
        if not 0 <= parent < task:
            raise InvalidWorkload(
                f"line {number}: task {task} names predecessor {parent}, "
                "which is not an earlier task"
            )
        if parent in seen:
            raise InvalidWorkload(f"line {number}: task {task} lists predecessor {parent} twice")
        if comm < 0:
            raise InvalidWorkload(f"line {number}: communication cost {comm} must be >= 0")
        seen.add(parent)


def _integer(token: str, number: int) -> int:
    try:
        return int(token)
    except ValueError:
        raise InvalidWorkload(f"line {number}: {token!r} is not an integer") from None


def _drawn_attributes(size: np.ndarray, seed: int, mix: TaskMix) -> tuple[np.ndarray, np.ndarray]:
    """(intensity, memory MB): the mix's draws, with memory rescaled from the drawn size to the
    real one so that it keeps the mix's MB per GFLOP and its noise."""
    drawn_size, intensity, drawn_memory = mix.draw(size.shape[0], np.random.default_rng(seed))
    memory = np.minimum(drawn_memory / drawn_size * size, mix.max_memory)
    return intensity, memory
