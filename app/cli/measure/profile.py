"""Measure every kernel at every tile size, alone and with all cores busy (and alone on the GPU
where one is measured, with its links), and assemble the kernel profile document
(schema_version 1: /tmp/profile-schema.md, docs/profiles.md)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from app.cli.measure.contention import BusyCores
from app.cli.measure.gpu import BANDWIDTH_BYTES, ArrayModule, measure_gpu_timings, measure_links
from app.cli.measure.kernels import KERNELS
from app.cli.measure.machine import cpu_model, provenance
from app.cli.measure.timing import (
    Budget,
    TimingStats,
    cold_pool_bytes,
    last_level_cache_bytes,
    operands_for,
    time_cell,
)

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Plan:
    """What to measure: tile sizes (b), the time budget of each cell, how many processes keep
    the cores busy for the all_busy cells, the seed of the random tiles, the bytes of the large
    copies that time a GPU's links, and where operands are: cold, from a pool of `pool_bytes` per
    process (None: twice this machine's last-level cache, app/cli/measure/timing.py), or warm
    (0: the same operands every call)."""

    sizes: tuple[int, ...]
    budget: Budget
    processes: int
    kernels: tuple[str, ...] = tuple(KERNELS)
    seed: int = 0
    link_bytes: int = BANDWIDTH_BYTES
    pool_bytes: int | None = None

    def resolved_pool_bytes(self) -> int:
        return cold_pool_bytes() if self.pool_bytes is None else self.pool_bytes


#: `hms profile measure`: 9 kernels x 5 sizes x (alone + all_busy). With 0.6 s and at most 200
#: calls per cell it took 24 s on a 2-core EPYC VM (the small cells stop at 200 calls); 1 s and
#: 1000 calls per cell, 60-70 s.
QUICK = Plan(sizes=(32, 64, 128, 256, 512), budget=Budget(3, 5, 1000, 1.0), processes=1)
#: `--thorough`: more sizes, 4x the time per cell, at least 20 repeats.
THOROUGH = Plan(
    sizes=(16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024),
    budget=Budget(5, 20, 2000, 2.5),
    processes=1,
)


def plan_for(
    thorough: bool,
    sizes: tuple[int, ...] | None,
    repeats: int | None,
    processes: int,
    warm: bool = False,
) -> Plan:
    """QUICK or THOROUGH with `processes` busy processes, its sizes replaced by `sizes` and a
    fixed count of `repeats` (no time budget) when given; warm operands if `warm`."""
    plan = replace(THOROUGH if thorough else QUICK, processes=processes)
    if warm:
        plan = replace(plan, pool_bytes=0)
    if sizes:
        plan = replace(plan, sizes=sizes)
    if repeats:
        budget = replace(plan.budget, min_repeats=repeats, max_repeats=repeats, seconds=0.0)
        plan = replace(plan, budget=budget)
    return plan


Progress = Callable[[int, int, str], None]  # cells done, cells in all, what is measured now


def timing_entry(
    kernel: str, size: int, contention: str, times_s: np.ndarray, device: str = "cpu"
) -> dict[str, Any]:
    """One element of the profile's "timings" (seconds)."""
    stats = TimingStats.of(times_s)
    return {
        "kernel": kernel,
        "device": device,
        "size": size,
        "contention": contention,
        "repeats": stats.repeats,
        "mean_s": stats.mean_s,
        "std_s": stats.std_s,
        "quantiles_s": {"p05": stats.p05_s, "p50": stats.p50_s, "p95": stats.p95_s},
    }


def measure_timings(plan: Plan, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every (kernel, size) cell of `plan`, alone then all_busy with the same repeat count,
    on one BLAS thread per process."""
    total, done = 2 * len(plan.sizes) * len(plan.kernels), 0
    pool_bytes = plan.resolved_pool_bytes()
    timings: list[dict[str, Any]] = []
    rng = np.random.default_rng(plan.seed)
    with threadpool_limits(limits=1), BusyCores(plan.processes, plan.seed) as busy:
        for size in plan.sizes:
            for name in plan.kernels:
                kernel = KERNELS[name]
                if progress:
                    progress(done, total, f"{name} b={size} alone")
                operands = operands_for(kernel, kernel.operands(size, rng), pool_bytes)
                alone = time_cell(kernel, operands, plan.budget)
                del operands  # free a cold pool before the busy processes build theirs
                timings.append(timing_entry(name, size, "alone", alone))
                if progress:
                    progress(done + 1, total, f"{name} b={size} all {busy.processes} cores busy")
                crowded = busy.run(name, size, alone.size, plan.budget.warmup, pool_bytes)
                timings.append(timing_entry(name, size, "all_busy", crowded))
                done += 2
    if progress:
        progress(done, total, "done")
    return timings


def measure_profile(
    plan: Plan,
    name: str,
    command: str,
    progress: Progress | None = None,
    gpu: ArrayModule | None = None,
) -> dict[str, Any]:
    """The whole profile document of this machine's CPU, and of `gpu` when given, measured now
    by `command`."""
    load_before = os.getloadavg()[0]  # other processes' load skews all_busy: say what it was
    cpu_cells = 2 * len(plan.sizes) * len(plan.kernels)
    total = cpu_cells + (len(plan.sizes) * len(plan.kernels) + 1 if gpu else 0)

    def cpu_progress(done: int, _cells: int, cell: str) -> None:
        if progress:
            progress(done, total, cell)

    def gpu_progress(done: int, _cells: int, cell: str) -> None:
        cpu_progress(cpu_cells + done, total, cell)

    timings = measure_timings(plan, cpu_progress)
    load_after = os.getloadavg()[0]
    pool_bytes = plan.resolved_pool_bytes()
    where = (
        f"each call on the next of a pool of {pool_bytes / 2**20:.0f} MiB of distinct operand "
        "sets (twice the last-level cache unless set), so its tiles start outside the caches "
        "as a task's do in a tiled factorization"
        if pool_bytes
        else "every call on the same operands (warm in the caches)"
    )
    document = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "description": (
            f"This machine's CPU measured by `{command}`: each kernel on one core with one BLAS "
            f"thread (SciPy's BLAS/LAPACK), alone and with all {plan.processes} cores running "
            f"it at once (one process per core); {where}; tile sizes "
            f"{', '.join(map(str, plan.sizes))}. "
            f"1-minute load average before measuring: {load_before:.2f}, after: "
            f"{load_after:.2f}."
        ),
        "precision": "double",
        "provenance": provenance(command),
        "devices": [
            {
                "kind": "cpu",
                "name": f"one {cpu_model()} core",
                "units": 1,
                "note": "1 core, 1 BLAS thread; all_busy: "
                f"{plan.processes} such processes at once, one per core",
            }
        ],
        "measurement": {
            "operands": "cold" if pool_bytes else "warm",
            "pool_bytes": pool_bytes or None,
            "last_level_cache_bytes": last_level_cache_bytes(),
        },
        "timings": timings,
        "links": [],
    }
    if gpu:
        _add_gpu(document, plan, gpu, gpu_progress)
    if progress:
        progress(total, total, "done")
    return document


def _add_gpu(document: dict[str, Any], plan: Plan, gpu: ArrayModule, progress: Progress) -> None:
    """`gpu`'s kernels (alone: one kernel at a time on the whole GPU) and links, its device
    entry and its provenance, into `document`."""
    cells = measure_gpu_timings(gpu, plan.sizes, plan.kernels, plan.budget, plan.seed, progress)
    document["timings"] += [timing_entry(k, b, "alone", t, device="gpu") for k, b, t in cells]
    progress(len(cells), len(cells) + 1, "host<->GPU transfers")
    document["links"] = [vars(link) for link in measure_links(gpu, plan.link_bytes)]
    document["devices"].append(
        {
            "kind": "gpu",
            "name": gpu.device,
            "units": 1,
            "note": "1 GPU through CuPy (cuBLAS/cuSOLVER; stand-ins for the QR tile kernels: "
            "app/cli/measure/gpu.py), one kernel at a time, host time with the device "
            "synchronised around each call",
        }
    )
    document["provenance"]["machine"]["gpu"] = gpu.device
    document["provenance"]["libraries"].update(gpu.versions)
    document["description"] += (
        f" The GPU ({gpu.device}) measured alone through CuPy at the same sizes, and its "
        "host<->device links (latency of a one-double copy, bandwidth of "
        f"{plan.link_bytes / 2**20:g} MiB page-locked copies, each direction)."
    )
