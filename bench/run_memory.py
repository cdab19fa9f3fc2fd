"""Peak memory of runs of several shapes against their estimate (app/runmemory.py).

Each run is a fresh `python` process (this file with `--child SPEC`), set up as a worker's pool
process is when its run starts: the engine compiled or loaded from numba's cache
(`app.sim.engine.warm_up`) and, for `learned`, the bootstrap model loaded. It resets its peak
resident size (/proc/self/clear_refs), notes its resident and virtual sizes, runs
`simulate_spec(SPEC)`, and reports how far each peaked above where it started (VmHWM, VmPeak:
MB). The estimate must be above both for every shape (docs/guarantees.md). Linux only (/proc).

    .venv/bin/python bench/run_memory.py        # markdown table to stdout
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIG = {"cpus": 64, "gpus": 8}

#: Tasks x devices x policies, oracle's splits, DAGs (dense and sparse), the runtime
#: schedulers, tiled algebra.
SHAPES: list[dict[str, Any]] = [
    {"workload": {"kind": "synthetic", "num_tasks": 200_000}, "policies": ["heft"]},
    {"workload": {"kind": "synthetic", "num_tasks": 200_000}, "cluster": BIG, "policies": ["heft"]},
    {
        "workload": {"kind": "synthetic", "num_tasks": 200_000},
        "policies": ["heft", "greedy", "eft", "met", "mct", "round_robin"],
    },
    {"workload": {"kind": "synthetic", "num_tasks": 100_000}, "policies": ["oracle"]},
    {
        "workload": {"kind": "synthetic", "num_tasks": 100_000},
        "cluster": BIG,
        "policies": ["oracle"],
    },
    {
        "workload": {
            "kind": "synthetic",
            "num_tasks": 100_000,
            "dependency_probability": 1.0,
            "max_parents": 16,
        },
        "policies": ["heft", "dmda"],
    },
    {"workload": {"kind": "layered_dag", "num_tasks": 20_000}, "policies": ["heft"]},
    {
        "workload": {"kind": "layered_dag", "num_tasks": 20_000, "density": 0.05},
        "policies": ["heft"],
    },
    {
        "workload": {"kind": "layered_dag", "num_tasks": 50_000},
        "policies": ["heft", "dmda", "dm", "heteroprio"],
    },
    {
        "workload": {"kind": "layered_dag", "num_tasks": 20_000, "density": 1.0, "jump": 3},
        "policies": ["heft"],
    },
    {
        "workload": {"kind": "tiled", "factorization": "cholesky", "tiles": 60, "tile_size": 256},
        "policies": ["heft", "heteroprio"],
    },
    {
        "workload": {"kind": "tiled", "factorization": "cholesky", "tiles": 40, "tile_size": 512},
        "policies": ["heft", "dmda", "oracle"],
    },
]


@dataclass(frozen=True)
class Measurement:
    resident_mb: float  # peak resident size above the start
    address_space_mb: float  # peak virtual size above the start
    seconds: float


def measure(spec: dict[str, Any]) -> Measurement:
    """One run of `spec` in a fresh process (see the module docstring)."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return Measurement(**json.loads(done.stdout.splitlines()[-1]))


def _status() -> dict[str, float]:
    sizes = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "VmSize", "VmPeak"):
                sizes[key] = int(value.split()[0]) / 1024
    return sizes


def _child(document: str) -> None:
    import time

    from app.ml.bootstrap import bootstrap_model
    from app.runspec import RunSpec
    from app.services.simulation import simulate_spec
    from app.sim.engine import warm_up

    warm_up()
    spec = RunSpec.model_validate(json.loads(document))
    if "learned" in spec.policies:  # a worker loads it before it forks (workers/signals.py)
        bootstrap_model()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS now
    start, began = _status(), time.monotonic()
    simulate_spec(spec)
    seconds, end = time.monotonic() - began, _status()
    peak = Measurement(end["VmHWM"] - start["VmRSS"], end["VmPeak"] - start["VmSize"], seconds)
    print(json.dumps(peak.__dict__))


def main() -> None:
    from app.runmemory import planned_shape
    from app.runspec import RunSpec

    print(
        "| workload | tasks | edges (bound) | devices | policies | peak RSS MB | peak VM MB "
        "| estimate MB | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for spec in SHAPES:
        shape = planned_shape(RunSpec.model_validate(spec))
        assert shape is not None
        peak = measure(spec)
        workload = {k: v for k, v in spec["workload"].items() if k != "num_tasks"}
        print(
            f"| {json.dumps(workload)} | {shape.tasks:,} | {shape.edges:,} | {shape.devices} "
            f"| {', '.join(spec['policies'])} | {peak.resident_mb:.0f} "
            f"| {peak.address_space_mb:.0f} | {shape.estimate_mb:.0f} | {peak.seconds:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2])
    else:
        main()
