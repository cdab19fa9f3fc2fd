import numpy as np
import pytest

from app.ml.features import FEATURE_NAMES, device_features, pair_features
from app.ml.training import (
    FitParams,
    evaluate,
    fit,
    holdout_mask,
    promotion_verdict,
    samples_from_run,
    skip_reason,
)
from app.sim.experiment import run_experiment
from tests.unit.sim.conftest import synthetic_problem, topcuoglu_problem


def samples(n=600, seed=1, policies=("oracle",)):
    problem = synthetic_problem(n, seed=seed, cpus=4, gpus=2)
    outcomes = run_experiment(problem, list(policies), 0)
    return problem, samples_from_run(problem, outcomes, n, np.random.default_rng(0))


def test_a_run_yields_each_sampled_task_on_every_distinct_device_model():
    problem, batch = samples(n=500)
    assert batch.count == 2 * 500  # one CPU model, one GPU model
    assert set(batch.device_kind.tolist()) == {0, 1}
    on_cpu = batch.device_kind == 0
    assert np.isin(batch.seconds[on_cpu], problem.exec_time[:, 0]).all()
    # Where oracle split a task, the sample carries its GPU share.
    assert np.isfinite(batch.oracle_share).any()
    assert np.nanmax(batch.oracle_share) < 1 and np.nanmin(batch.oracle_share) > 0


def test_a_limit_samples_some_tasks_and_explicit_costs_yield_none():
    problem = synthetic_problem(300)
    outcomes = run_experiment(problem, ["greedy"], 0)
    batch = samples_from_run(problem, outcomes, 50, np.random.default_rng(0))
    assert batch.count == 100 and np.isnan(batch.oracle_share).all()
    explicit = topcuoglu_problem()
    assert (
        samples_from_run(
            explicit, run_experiment(explicit, ["heft"], 0), 10, np.random.default_rng(0)
        )
        is None
    )


def test_a_runs_samples_spelled_out_pair_each_device_models_features_with_each_tasks():
    problem, batch = samples(n=400)
    spelled = batch.samples()
    tasks = batch.task_features.shape[0]
    models = problem.cluster.model_groups(np.arange(problem.num_devices))
    assert batch.device_features.shape[0] == len(models) == 2
    for k, group in enumerate(models):
        rows = slice(k * tasks, (k + 1) * tasks)
        device = device_features(problem.cluster)[int(group[0])]
        expected = pair_features(batch.task_features, device)
        assert spelled.features[rows].tobytes() == expected.tobytes()
        assert (spelled.device_kind[rows] == problem.cluster.kind[int(group[0])]).all()
    assert spelled.features.shape == (batch.count, len(FEATURE_NAMES))
    assert spelled.seconds is batch.seconds and spelled.oracle_share is batch.oracle_share


def test_fitting_on_samples_predicts_held_out_times_closely():
    _, run_samples = samples(n=2000)
    batch = run_samples.samples()
    mask = holdout_mask(np.arange(batch.count))  # positions stand in for stored sample ids
    assert mask.mean() == pytest.approx(0.2)
    estimator = fit(batch.subset(~mask), FitParams(max_iter=150))
    metrics = evaluate(estimator, batch.subset(mask))
    assert metrics["ln_seconds"]["mae"] < 0.1 and metrics["ln_seconds"]["r2"] > 0.95
    assert {"cpu_ln_seconds", "gpu_ln_seconds"} <= set(metrics)


def test_fit_reports_progress_in_chunks_up_to_1():
    _, run_samples = samples(n=300)
    batch = run_samples.samples()
    seen: list[float] = []
    fit(batch, FitParams(max_iter=120), seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 3


def test_promotion_needs_a_lower_holdout_error_than_the_active_model():
    def scores(mae):
        return {"ln_seconds": {"mae": mae, "r2": 0.9, "count": 10}}

    assert promotion_verdict(scores(0.3), None, None).promote
    better = promotion_verdict(scores(0.1), scores(0.2), 4)
    assert better.promote and "v4" in better.reason
    worse = promotion_verdict(scores(0.25), scores(0.2), 4)
    assert not worse.promote and "0.2500 >= active v4's 0.2000" in worse.reason
    assert not promotion_verdict(scores(0.2), scores(0.2), 4).promote  # a tie keeps the active


def test_too_little_data_is_a_skip_with_the_numbers():
    assert skip_reason(120, 2000) == "skipped: 120 samples < minimum 2000"
    assert skip_reason(2000, 2000) is None
