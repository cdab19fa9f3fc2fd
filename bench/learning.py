"""The learning curve: how close `learned` gets to `oracle` after 0, 1, 5 and 20 runs of a workload
family, against `heft` and `greedy` measured on the same workloads.

The family runs on a cluster the bootstrap model never saw: GPUs calibrated from a profile of a
fast accelerator (20 TFLOP/s, 20 GB/s link, 100 us latency: 13x the default GPU, beyond the
bootstrap's 1/4..4x range). After k runs, a model is fitted on their samples exactly as a retrain
does (app.ml.training: the same sampling, features, estimator and parameters; k = 0 is the
bootstrap model), then every policy runs on evaluation workloads no training run saw. Gaps are
relative to oracle's makespan on the same workload; "closed" is the share of greedy's gap that
learned closes: (greedy - learned) / (greedy - oracle).

    .venv/bin/python bench/learning.py [--runs 0,1,5,20] [--evaluations 5]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from app.ml.bootstrap import bootstrap_model
from app.ml.performance_model import SklearnPerformanceModel
from app.ml.training import FitParams, Samples, fit, samples_from_run
from app.runspec import RunSpec, build_problem
from app.settings import get_settings
from app.sim.experiment import run_experiment
from app.sim.policies import PolicyContext
from app.sim.policies.learned import PerformanceModel

FAST_GPU_PROFILE = {
    "profiled_sizes": [128, 256, 512, 1024, 2048, 4096, 8192],
    "cpu_times": [2 * n**3 / 1e9 / (50.0 * 16) for n in [128, 256, 512, 1024, 2048, 4096, 8192]],
    "gpu_times": [
        1e-4 + 3 * n**2 * 4 / 1e6 / 20_000 + 2 * n**3 / 1e9 / 20_000
        for n in [128, 256, 512, 1024, 2048, 4096, 8192]
    ],
    "cpu_threads": 16,
    "gpu_memory_mb": 81_559,
}
CLUSTER = {"cpus": 8, "gpus": 2, "profile": FAST_GPU_PROFILE}
FAMILIES = {
    # Online arrivals, loaded enough that placement decides the makespan.
    "online synthetic (2k tasks, 900/s)": {
        "kind": "synthetic", "num_tasks": 2000, "arrival_rate": 900.0,
    },
    "layered DAG (1k tasks, CCR 1)": {"kind": "layered_dag", "num_tasks": 1000, "ccr": 1.0},
}  # fmt: skip
POLICIES = ["greedy", "heft", "learned", "oracle"]
TRAINING_POLICIES = ["greedy", "oracle"]  # what the family's runs compared (oracle: its splits)


@dataclass(frozen=True)
class Point:
    family: str
    runs: int
    samples: int
    learned_gap: float
    heft_gap: float
    greedy_gap: float
    learned_vs_heft: float

    @property
    def closed(self) -> float:
        return (self.greedy_gap - self.learned_gap) / self.greedy_gap if self.greedy_gap else 1.0


def spec(workload: dict, seed: int, policies: list[str]) -> RunSpec:
    return RunSpec.model_validate(
        {"workload": {**workload, "seed": seed}, "cluster": CLUSTER, "policies": policies}
    )


def training_samples(workload: dict, runs: int) -> Samples | None:
    """The samples `runs` succeeded runs of the family would have added (seeds 100..)."""
    batches = []
    for k in range(runs):
        run_spec = spec(workload, 100 + k, TRAINING_POLICIES)
        problem = build_problem(run_spec)
        outcomes = run_experiment(problem, TRAINING_POLICIES, run_spec.seed)
        rng = np.random.default_rng(k)
        batch = samples_from_run(problem, outcomes, get_settings().samples_per_run, rng)
        if batch is not None:
            batches.append(batch)
    if not batches:
        return None
    return Samples(*(np.concatenate([getattr(b, f) for b in batches]) for f in
                     ("features", "device_kind", "seconds", "oracle_share")))  # fmt: skip


def model_after(workload: dict, runs: int) -> tuple[PerformanceModel, int]:
    samples = training_samples(workload, runs)
    if samples is None:
        return bootstrap_model(), 0
    settings = get_settings()
    params = FitParams(
        max_iter=settings.training_max_iter, learning_rate=settings.training_learning_rate
    )
    return SklearnPerformanceModel(fit(samples, params), f"after {runs} runs"), samples.count


def evaluate(family: str, workload: dict, runs: int, evaluations: int) -> Point:
    model, count = model_after(workload, runs)
    context = PolicyContext(performance_model=model)
    gaps: dict[str, list[float]] = {policy: [] for policy in POLICIES}
    versus_heft = []
    for seed in range(900, 900 + evaluations):
        run_spec = spec(workload, seed, POLICIES)
        outcomes = run_experiment(build_problem(run_spec), POLICIES, seed, context=context)
        makespan = {o.policy: o.metrics.makespan for o in outcomes}
        for policy in POLICIES:
            gaps[policy].append(makespan[policy] / makespan["oracle"] - 1)
        versus_heft.append(makespan["learned"] / makespan["heft"] - 1)
    mean = {policy: float(np.mean(values)) for policy, values in gaps.items()}
    return Point(family, runs, count, mean["learned"], mean["heft"], mean["greedy"],
                 float(np.mean(versus_heft)))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="0,1,5,20", help="training runs per point")
    parser.add_argument("--evaluations", type=int, default=5, help="evaluation workloads")
    args = parser.parse_args()
    runs = [int(r) for r in args.runs.split(",")]
    print("| family | training runs | samples | learned gap to oracle | heft gap | greedy gap "
          "| greedy gap closed by learned | learned vs heft |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for family, workload in FAMILIES.items():
        for k in runs:
            print(f"  {family}: {k} runs", file=sys.stderr)
            p = evaluate(family, workload, k, args.evaluations)
            gaps = (p.learned_gap, p.heft_gap, p.greedy_gap)
            cells = [family, str(k), str(p.samples), *(f"{gap:+.1%}" for gap in gaps)]
            cells += [f"{p.closed:.0%}", f"{p.learned_vs_heft:+.1%}"]
            print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
