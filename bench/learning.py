"""The learning curve: how close `learned` gets to `oracle` after 0, 1, 5 and 20 runs of the
default workload, against `heft` measured on the same workloads.

The workload is the default loaded online stream (`synthetic`, 2000 tasks, offered load 0.85:
calls of the Cholesky kernels on tiles of 32..1024) on the default cluster (8 CPU cores, 2 GPUs,
the shipped V100/Skylake kernel profile) with `knowledge: "estimated"`: heft decides on the
nominal cost model (flops / peak), learned on its model's predictions, oracle on the truth (the
times the profile measured, app/sim/measured.py), and the engine executes every placement on the
truth. After k runs, a model is fitted on their
samples exactly as a retrain does (app.ml.training: the same sampling, features, estimator and
parameters; k = 0 is the bootstrap model), then every policy runs on 5 held-out seeds no training
run saw. The metric is the default rank metric of online workloads, the mean flow time; each
cell is the mean over the held-out seeds of the per-seed ratio to heft or to oracle.

Goal (issue 8): after 20 runs, learned at least 10 % better than heft (ratio <= 0.90) and
within 5 % of oracle (ratio <= 1.05).

    .venv/bin/python bench/learning.py [--runs 0,1,5,20] [--evaluations 5] [--tasks 2000]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.ml.bootstrap import bootstrap_model
from app.ml.performance_model import SklearnPerformanceModel
from app.ml.training import FitParams, Samples, fit, samples_from_run
from app.runspec import RunSpec, build_scenario
from app.settings import get_settings
from app.sim.experiment import run_experiment
from app.sim.policies import PolicyContext
from app.sim.policies.learned import PerformanceModel

POLICIES = ["greedy", "heft", "learned", "oracle"]
TRAINING_POLICIES = ["heft", "oracle"]  # what the training runs compared (oracle: its splits)
METRIC = "mean_flow_time"


@dataclass(frozen=True)
class Point:
    runs: int
    samples: int
    ratios: dict[str, float]  # mean over seeds of learned / policy, per reference policy
    flow: dict[str, float]  # mean flow time (s) per policy, mean over seeds


def spec(workload: dict[str, Any], seed: int, policies: list[str]) -> RunSpec:
    return RunSpec.model_validate(
        {"workload": {**workload, "seed": seed}, "policies": policies, "seed": seed}
    )


def training_samples(workload: dict[str, Any], runs: int) -> Samples | None:
    """The samples `runs` succeeded runs of the workload would have added (seeds 100..)."""
    batches = []
    for k in range(runs):
        run_spec = spec(workload, 100 + k, TRAINING_POLICIES)
        scenario = build_scenario(run_spec)
        outcomes = run_experiment(scenario, TRAINING_POLICIES, run_spec.seed)
        rng = np.random.default_rng(k)
        batch = samples_from_run(scenario.truth, outcomes, get_settings().samples_per_run, rng)
        if batch is not None:
            batches.append(batch)
    if not batches:
        return None
    fields = ("features", "device_kind", "seconds", "oracle_share")
    return Samples(*(np.concatenate([getattr(b, f) for b in batches]) for f in fields))


def model_after(workload: dict[str, Any], runs: int) -> tuple[PerformanceModel, int]:
    samples = training_samples(workload, runs)
    if samples is None:
        return bootstrap_model(), 0
    settings = get_settings()
    params = FitParams(
        max_iter=settings.training_max_iter, learning_rate=settings.training_learning_rate
    )
    return SklearnPerformanceModel(fit(samples, params), f"after {runs} runs"), samples.count


def evaluate(workload: dict[str, Any], runs: int, evaluations: int) -> Point:
    model, count = model_after(workload, runs)
    context = PolicyContext(performance_model=model)
    flows: dict[str, list[float]] = {policy: [] for policy in POLICIES}
    for seed in range(900, 900 + evaluations):
        run_spec = spec(workload, seed, POLICIES)
        outcomes = run_experiment(build_scenario(run_spec), POLICIES, seed, context=context)
        for outcome in outcomes:
            flows[outcome.policy].append(outcome.metrics.value(METRIC))
    learned = np.array(flows["learned"])
    ratios = {p: float(np.mean(learned / np.array(flows[p]))) for p in ("heft", "oracle")}
    return Point(runs, count, ratios, {p: float(np.mean(v)) for p, v in flows.items()})


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", default="0,1,5,20", help="training runs per point")
    parser.add_argument("--evaluations", type=int, default=5, help="held-out seeds")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per workload")
    args = parser.parse_args()
    workload = {"kind": "synthetic", "num_tasks": args.tasks}
    print("| training runs | samples | mean flow s: greedy | heft | learned | oracle "
          "| learned / heft | learned / oracle |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for k in (int(r) for r in args.runs.split(",")):
        print(f"  after {k} runs", file=sys.stderr)
        p = evaluate(workload, k, args.evaluations)
        flows = [f"{p.flow[policy]:.3f}" for policy in POLICIES]
        ratios = [f"{p.ratios['heft']:.3f}", f"{p.ratios['oracle']:.3f}"]
        print("| " + " | ".join([str(k), str(p.samples), *flows, *ratios]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
