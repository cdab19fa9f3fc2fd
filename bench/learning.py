"""The schedule contest: `dmda` deciding with each performance model (app/ml/perfmodels.py) after
0, 1, 5 and 20 training runs, against `dmda` on the profile's exact mean times and `oracle`, on
the measured truth, on tile sizes the models were trained on and on sizes they were not.

Cases: tiled Cholesky, LU and QR (tiled.py) and the synthetic online workload (kernelmix.py, load
0.85), on each shipped kernel profile (app/profiles): `v100-skylake-mcsweeney2020` on 8 CPU cores
+ 2 GPUs (the default cluster), `epyc-2c-vm-2026-12` on 8 CPU cores (it timed no GPU). A case the
profile cannot run (a kernel it never timed) is printed as left out, with the reason.

A training run k is one simulation of `dmda` with the model fitted on the executions
(`perfmodels.observed`) of runs 0..k-1, on training seed 100 + k at training tile size
TRAIN_SIZES[k % 3]; its own executions are then added (on-policy, as StarPU calibrates: run 0
has no observations, every model answers NaN, dmda explores). Each model trains on its own runs.
After k runs the model is scored on held-out seeds 900.. (`--seeds`) at every test size the
profile measured (predictors.py: seen 128, 256, 512; unseen 192, 384, 768 and 96, 1024 at the
edges; sizes outside the profile's measured range cannot be drawn and are listed as left out).

The metric is the one ranking.default_rank_by picks: makespan for the static DAGs, mean flow time
for the online workload. A cell is the ratio of dmda + model to a reference on the same scenario
(seed, size), averaged per seed over the group's sizes, then the mean over seeds with its 95 %
Student t interval. References: dmda + `ExactModel` (the oracle estimator: the profile's mean
times) and `oracle` (decides on the drawn truth). After 0 runs every model is uncalibrated
everywhere and dmda decides alike with any of them: one row.

Sizes (kept small so the full run fits ~10 min on a 2-core VM; set before any result was seen):
8 x 8 tiles (Cholesky 120 tasks, LU and QR 204), 400 synthetic tasks. `--quick` is a smoke
test (two seeds, one seen and one unseen size, runs 0, 1, 2, two small cases), not the contest.

    PYTHONPATH=. .venv/bin/python bench/learning.py [--quick] [--seeds 5] [--runs 0,1,5,20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from predictors import TEST_SIZES, TRAIN_SIZES  # a sibling: bench/ is on sys.path
from scipy.optimize import OptimizeWarning

from app.ml.perfmodels import MODEL_NAMES, Observations, PerformanceModel, make_model, observed
from app.runspec import ClusterSpec, SyntheticWorkloadSpec, kernel_profile
from app.sim.experiment import run_experiment
from app.sim.kernelmix import KernelMix
from app.sim.knowledge import Scenario
from app.sim.policies import PolicyContext
from app.sim.predicted import ExactModel, KernelModel
from app.sim.profile import Profile
from app.sim.ranking import default_rank_by
from app.sim.tiled import KERNELS, Factorization, tiled_workload
from app.studies.statistics import summarize_metric

DECIDER = "dmda"
TRAINING_SEED = 100
HELD_OUT_SEED = 900
SYNTHETIC_LOAD = 0.85
ORACLE = "oracle"
UNCALIBRATED = "(any: uncalibrated)"


@dataclass(frozen=True)
class Case:
    """One workload on one profile's cluster; `tiles` per row of a tiled DAG, `tasks` of the
    synthetic workload."""

    workload: Factorization | Literal["synthetic"]
    profile_name: str
    cpus: int
    gpus: int
    tiles: int = 8
    tasks: int = 400
    test_sizes: tuple[int, ...] = TEST_SIZES

    @property
    def devices(self) -> list[str]:
        return ClusterSpec(cpus=self.cpus, gpus=self.gpus).device_kinds

    def kernels(self, profile: Profile) -> tuple[str, ...]:
        if self.workload == "synthetic":
            return KernelMix.of(profile, self.devices).kernels
        return KERNELS[self.workload]

    def missing(self, profile: Profile) -> str | None:
        """Why the profile cannot run this case, or None."""
        lacking = [
            f"{kernel} on {device}"
            for kernel in self.kernels(profile)
            for device in self.devices
            if (kernel, device, "alone") not in profile.curves
        ]
        if lacking:
            return f"the profile times no {', '.join(lacking)}"
        return None

    def sizes(self, profile: Profile) -> tuple[list[int], list[int]]:
        """(test sizes every kernel of the case was measured at on every device, the others)."""
        curves = [profile.curve(k, d) for k in self.kernels(profile) for d in self.devices]
        low, high = max(c.sizes[0] for c in curves), min(c.sizes[-1] for c in curves)
        inside = [b for b in self.test_sizes if low <= b <= high]
        return inside, [b for b in self.test_sizes if b not in inside]

    def scenario(self, profile: Profile, tile_size: int, seed: int) -> Scenario:
        """The case at one tile size: the truth drawn from the profile on `seed`'s stream."""
        cluster = ClusterSpec(cpus=self.cpus, gpus=self.gpus).build()
        if self.workload != "synthetic":
            workload = tiled_workload(self.workload, self.tiles, tile_size)
            return Scenario.build(workload, cluster, profile, seed)
        kernels = self.kernels(profile)
        one_size = KernelMix(kernels, (tile_size,) * len(kernels), (tile_size,) * len(kernels))
        spec = SyntheticWorkloadSpec(kind="synthetic", num_tasks=self.tasks)
        workload = spec.build(seed, one_size)
        return Scenario.build(workload, cluster, profile, seed, load=SYNTHETIC_LOAD)

    @property
    def label(self) -> str:
        return f"{self.workload} on `{self.profile_name}` ({self.cpus} CPU, {self.gpus} GPU)"


def cases(quick: bool) -> list[Case]:
    gpu, cpu = "v100-skylake-mcsweeney2020", "epyc-2c-vm-2026-12"
    if quick:
        sizes = (128, 192)
        return [
            Case("cholesky", cpu, 4, 0, tiles=4, test_sizes=sizes),
            Case("synthetic", gpu, 4, 1, tasks=100, test_sizes=sizes),
            Case("lu", gpu, 4, 1, tiles=4, test_sizes=sizes),
        ]
    workloads: tuple[Factorization | Literal["synthetic"], ...] = (
        "cholesky",
        "lu",
        "qr",
        "synthetic",
    )
    return [Case(w, gpu, 8, 2) for w in workloads] + [Case(w, cpu, 8, 0) for w in workloads]


def schedule_metric(
    scenario: Scenario, policy: str, model: KernelModel | None, seed: int
) -> tuple[float, Observations]:
    """`policy` (deciding with `model`) on the scenario: its rank metric and what it observed."""
    context = PolicyContext(kernel_model=model)
    (outcome,) = run_experiment(scenario, [policy], seed, context=context)
    metric = outcome.metrics.value(default_rank_by(scenario.truth.workload))
    return metric, observed(scenario.truth, outcome.schedule)


def fitted(name: str, parts: list[Observations]) -> PerformanceModel:
    """A fresh model fitted on the observations so far; unfitted (NaN everywhere) on none."""
    model = make_model(name)
    return model.fit(Observations.concat(parts)) if parts else model


@dataclass
class Training:
    """A model's on-policy training: the model after each checkpoint's number of runs."""

    models: dict[int, PerformanceModel] = field(default_factory=dict)
    observations: dict[int, int] = field(default_factory=dict)


def train(case: Case, profile: Profile, name: str, checkpoints: list[int]) -> Training:
    training, parts = Training(), list[Observations]()
    for k in range(max(checkpoints) + 1):
        model = fitted(name, parts)
        if k in checkpoints:
            training.models[k] = model
            training.observations[k] = sum(part.count for part in parts)
        if k == max(checkpoints):
            break
        size = TRAIN_SIZES[k % len(TRAIN_SIZES)]
        scenario = case.scenario(profile, size, TRAINING_SEED + k)
        parts.append(schedule_metric(scenario, DECIDER, model, TRAINING_SEED + k)[1])
    return training


#: (tile size, seed) -> the metric of one decider on that held-out scenario.
Scores = dict[tuple[int, int], float]


@dataclass(frozen=True)
class Row:
    model: str
    runs: int
    observations: int
    scores: Scores


def evaluate(
    scenarios: dict[tuple[int, int], Scenario], policy: str, model: KernelModel | None
) -> Scores:
    return {
        key: schedule_metric(scenario, policy, model, key[1])[0]
        for key, scenario in scenarios.items()
    }


@dataclass(frozen=True)
class Ratio:
    """The mean over seeds of a per-seed ratio, and its 95 % t interval (None with one seed)."""

    mean: float
    low: float | None
    high: float | None

    def __str__(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.mean:.3f}"
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def ratio(row: Scores, reference: Scores, sizes: list[int]) -> Ratio:
    """Per seed, the mean over `sizes` of row / reference; their mean and 95 % t interval."""
    seeds = sorted({seed for _, seed in reference})
    per_seed = [float(np.mean([row[b, s] / reference[b, s] for b in sizes])) for s in seeds]
    summary = summarize_metric(per_seed)
    return Ratio(summary["mean"], summary["ci_low"], summary["ci_high"])


@dataclass(frozen=True)
class Contest:
    case: Case
    seen: list[int]
    unseen: list[int]
    rows: list[Row]
    exact: Scores
    oracle: Scores
    metric: str


def contest(case: Case, profile: Profile, checkpoints: list[int], seeds: int) -> Contest:
    inside, _ = case.sizes(profile)
    seen = [b for b in inside if b in TRAIN_SIZES]
    unseen = [b for b in inside if b not in TRAIN_SIZES]
    scenarios = {
        (b, seed): case.scenario(profile, b, seed)
        for b in inside
        for seed in range(HELD_OUT_SEED, HELD_OUT_SEED + seeds)
    }
    rows = []
    if 0 in checkpoints:  # any unfitted model: NaN everywhere, as every model before run 0
        rows.append(Row(UNCALIBRATED, 0, 0, evaluate(scenarios, DECIDER, make_model("history"))))
    for name in MODEL_NAMES:
        training = train(case, profile, name, checkpoints)
        for k in (k for k in checkpoints if k > 0):
            scores = evaluate(scenarios, DECIDER, training.models[k])
            rows.append(Row(name, k, training.observations[k], scores))
    exact = evaluate(scenarios, DECIDER, ExactModel(profile))
    oracle = evaluate(scenarios, ORACLE, None)
    metric = default_rank_by(next(iter(scenarios.values())).truth.workload)
    return Contest(case, seen, unseen, rows, exact, oracle, metric)


def table(result: Contest) -> list[str]:
    groups = [("seen", result.seen), ("unseen", result.unseen)]
    head = " | ".join(f"{g}: / dmda exact | {g}: / oracle" for g, _ in groups)
    lines = [
        f"| model | runs | observations | {head} |",
        "|---|---:|---:|" + "---|" * 2 * len(groups),
    ]
    for row in sorted(result.rows, key=lambda r: (r.runs, r.model)):
        cells = [
            str(ratio(row.scores, reference, sizes))
            for _, sizes in groups
            for reference in (result.exact, result.oracle)
        ]
        lines.append(
            f"| {row.model} | {row.runs} | {row.observations} | " + " | ".join(cells) + " |"
        )
    exact_vs_oracle = [ratio(result.exact, result.oracle, sizes) for _, sizes in groups]
    lines.append(f"| dmda exact | — | — | 1 | {exact_vs_oracle[0]} | 1 | {exact_vs_oracle[1]} |")
    return lines


def per_size(result: Contest, runs: int) -> list[str]:
    sizes = sorted(result.seen + result.unseen)
    lines = [
        "| model | " + " | ".join(f"b={b}{'' if b in TRAIN_SIZES else '*'}" for b in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for row in (r for r in result.rows if r.runs == runs):
        cells = [f"{ratio(row.scores, result.exact, [b]).mean:.3f}" for b in sizes]
        lines.append(f"| {row.model} | " + " | ".join(cells) + " |")
    return lines


#: The issue's goal after the last checkpoint: learned / dmda exact at most this, on seen and on
#: unseen sizes, and learned / history at most GOAL_HISTORY on unseen sizes.
GOAL_EXACT = 1.02
GOAL_HISTORY = 0.90


@dataclass(frozen=True)
class Verdict:
    """learned after some runs: / dmda exact on seen and unseen sizes, / each other model on
    unseen sizes."""

    seen: Ratio
    unseen: Ratio
    versus: dict[str, Ratio]

    @property
    def met(self) -> bool:
        exact = max(self.seen.mean, self.unseen.mean) <= GOAL_EXACT
        return exact and self.versus["history"].mean <= GOAL_HISTORY


def verdict(result: Contest, runs: int) -> Verdict:
    after = {row.model: row.scores for row in result.rows if row.runs == runs}
    learned = after["learned"]
    others = [name for name in MODEL_NAMES if name != "learned"]
    return Verdict(
        ratio(learned, result.exact, result.seen),
        ratio(learned, result.exact, result.unseen),
        {name: ratio(learned, after[name], result.unseen) for name in others},
    )


def goal(result: Contest, runs: int) -> list[str]:
    v = verdict(result, runs)
    history = v.versus["history"]
    return [
        f"Goal after {runs} runs: **{'met' if v.met else 'not met'}**: learned / dmda exact "
        f"{v.seen} on seen sizes, {v.unseen} on unseen (goal <= {GOAL_EXACT}); learned / history "
        f"{history} on unseen sizes (goal <= {GOAL_HISTORY}).",
        "learned / the others on unseen sizes (< 1: learned better): "
        + "; ".join(f"{name} {value}" for name, value in v.versus.items())
        + ".",
    ]


def summary(results: list[tuple[Case, Contest | None]], runs: int) -> list[str]:
    others = [name for name in MODEL_NAMES if name != "learned"]
    lines = [
        f"### Summary after {runs} runs: learned",
        "",
        "| workload | profile | / dmda exact, seen | / dmda exact, unseen | "
        + " | ".join(f"/ {name}, unseen" for name in others)
        + " | goal |",
        "|---|---|" + "---|" * (3 + len(others)),
    ]
    for case, result in results:
        if result is None:
            blank = " | ".join(["—"] * (2 + len(others)))
            lines.append(f"| {case.workload} | `{case.profile_name}` | {blank} | left out |")
            continue
        v = verdict(result, runs)
        cells = [str(v.seen), str(v.unseen), *(str(v.versus[name]) for name in others)]
        cells.append("met" if v.met else "not met")
        lines.append(f"| {case.workload} | `{case.profile_name}` | " + " | ".join(cells) + " |")
    return [*lines, ""]


def report(case: Case, checkpoints: list[int], seeds: int) -> tuple[list[str], Contest | None]:
    profile = kernel_profile(case.profile_name)
    lines = [f"### {case.label}", ""]
    if "gpu" not in profile.devices:
        lines += ["The profile timed no GPU: the cluster is CPU cores only, no GPU case.", ""]
    why = case.missing(profile)
    if why is not None:
        return [*lines, f"Left out: {why}.", ""], None
    result = contest(case, profile, checkpoints, seeds)
    _, outside = case.sizes(profile)
    lines.append(f"Metric: {result.metric}. Seen sizes {result.seen}, unseen {result.unseen}.")
    if outside:
        lines.append(
            f"Left out: test sizes {outside}, outside the range the profile measured every "
            f"kernel of the case at (the truth does not extrapolate)."
        )
    lines += ["", *table(result), ""]
    last = max(checkpoints)
    lines += [f"dmda + model / dmda exact per test size (* unseen) after {last} runs:", ""]
    lines += [*per_size(result, last), "", *goal(result, last), ""]
    return lines, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test, not the contest")
    parser.add_argument("--seeds", type=int, default=5, help="held-out seeds")
    parser.add_argument("--runs", default="0,1,5,20", help="training runs per checkpoint")
    args = parser.parse_args(argv)
    checkpoints = sorted({int(r) for r in args.runs.split(",")})
    if checkpoints[0] < 0 or checkpoints[-1] < 1:
        parser.error("--runs: numbers of training runs >= 0, at least one of them > 0")
    seeds = args.seeds
    if args.quick:
        checkpoints, seeds = [0, 1, 2], 2
    from app.runtime.threads import limit_native_threads

    limit_native_threads()  # learned's fits: one OpenMP thread beside another busy process
    # nl_regression's curve_fit warns that it cannot estimate the covariance of an exact fit (the
    # V100 profile's CPU times are means without spread); the covariance is not used.
    warnings.filterwarnings("ignore", category=OptimizeWarning)
    started = time.perf_counter()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.2f}; "
        f"decider {DECIDER}; runs {checkpoints}; {seeds} held-out seeds from {HELD_OUT_SEED}; "
        f"training seeds from {TRAINING_SEED}, sizes {TRAIN_SIZES} in turn.\n"
    )
    results = []
    for case in cases(args.quick):
        print(f"  {case.label}", file=sys.stderr)
        lines, result = report(case, checkpoints, seeds)
        print("\n".join(lines))
        results.append((case, result))
    print("\n".join(summary(results, max(checkpoints))))
    print(
        f"{time.perf_counter() - started:.0f} s wall, load average {os.getloadavg()[0]:.2f} at "
        f"the end."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
