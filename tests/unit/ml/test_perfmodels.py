import json

import numpy as np
import pytest

from app.ml.features import FEATURE_NAMES
from app.ml.perfmodels import (
    CALIBRATE_MINIMUM,
    MODEL_NAMES,
    HistoryModel,
    InvalidObservations,
    LearnedModel,
    NonLinearRegressionModel,
    Observations,
    RegressionModel,
    kernel_features,
    make_model,
    model_from_state,
    observed,
    observed_once,
)
from app.ml.training import FitParams
from app.runspec import kernel_profile
from app.sim.cluster import Cluster
from app.sim.costs import transfer_time
from app.sim.engine import simulate
from app.sim.knowledge import Scenario
from app.sim.policies import make_policy
from app.sim.tiled import tiled_workload

SIZES = np.array([32, 64, 128, 256, 512, 1024])


def noisy(seed: int = 0) -> Observations:
    """Two kernels on two kinds of device, 12 draws per size, log-normal noise."""
    rng = np.random.default_rng(seed)
    parts = []
    for kernel, device, a, p in (
        ("gemm", "cpu", 2e-9, 3.0),
        ("gemm", "gpu", 1e-11, 2.6),
        ("potrf", "cpu", 1e-9, 2.9),
        ("potrf", "gpu", 5e-10, 2.2),
    ):
        b = np.repeat(SIZES, 12)
        parts.append(Observations.of(kernel, b, device, a * b**p * rng.lognormal(0, 0.1, b.size)))
    return Observations.concat(parts)


def test_regression_recovers_a_power_law_exactly():
    seconds = 3e-9 * SIZES**2.8
    model = RegressionModel().fit(Observations.of("gemm", SIZES, "cpu", seconds))
    a, p = model.coefficients["gemm", "cpu"]
    assert a == pytest.approx(3e-9, rel=1e-9)
    assert p == pytest.approx(2.8, rel=1e-12)
    assert model.predict("gemm", [2048], "cpu") == pytest.approx(3e-9 * 2048**2.8, rel=1e-9)


def test_nl_regression_recovers_a_power_law_plus_a_constant_exactly():
    seconds = 3e-10 * SIZES**2.7 + 4e-5
    model = NonLinearRegressionModel().fit(Observations.of("trsm", SIZES, "gpu", seconds))
    a, p, c = model.coefficients["trsm", "gpu"]
    assert (a, p, c) == pytest.approx((3e-10, 2.7, 4e-5), rel=1e-7)
    assert model.predict("trsm", [96, 768], "gpu") == pytest.approx(
        3e-10 * np.array([96, 768]) ** 2.7 + 4e-5, rel=1e-7
    )


def test_nl_regression_keeps_the_constant_non_negative():
    # A pure power law whose log-space fit is perfect: the constant must stay at its bound 0.
    seconds = 2e-9 * SIZES**3.0
    model = NonLinearRegressionModel().fit(Observations.of("gemm", SIZES, "cpu", seconds))
    a, p, c = model.coefficients["gemm", "cpu"]
    assert c >= 0.0
    assert (a, p) == pytest.approx((2e-9, 3.0), rel=1e-6)


def test_the_regressions_need_enough_distinct_sizes():
    two = Observations.of("gemm", [128, 128, 256], "cpu", [1.0, 1.1, 8.0])
    assert np.isnan(NonLinearRegressionModel().fit(two).predict("gemm", [128], "cpu")).all()
    assert np.isfinite(RegressionModel().fit(two).predict("gemm", [128], "cpu")).all()
    one = Observations.of("gemm", [128, 128], "cpu", [1.0, 1.1])
    assert np.isnan(RegressionModel().fit(one).predict("gemm", [128], "cpu")).all()


def test_history_predicts_the_mean_of_a_calibrated_entry():
    times = np.arange(1.0, CALIBRATE_MINIMUM + 1)
    model = HistoryModel().fit(Observations.of("potrf", [256] * times.size, "cpu", times))
    assert model.predict("potrf", [256], "cpu")[0] == pytest.approx(times.mean())
    assert model.samples("potrf", [256], "cpu")[0] == CALIBRATE_MINIMUM


def test_history_below_the_calibration_minimum_is_uncalibrated():
    times = np.arange(1.0, CALIBRATE_MINIMUM)  # one sample short
    model = HistoryModel().fit(Observations.of("potrf", [256] * times.size, "cpu", times))
    assert np.isnan(model.predict("potrf", [256], "cpu")).all()
    assert HistoryModel(minimum_samples=1).fit(
        Observations.of("potrf", [256] * times.size, "cpu", times)
    ).predict("potrf", [256], "cpu")[0] == pytest.approx(times.mean())


def test_history_never_guesses_an_unseen_size_kernel_or_device():
    model = HistoryModel().fit(noisy())
    assert np.isfinite(model.predict("gemm", [128, 1024], "gpu")).all()
    assert np.isnan(model.predict("gemm", [192, 2048, 128.5], "gpu")).all()
    assert np.isnan(model.predict("syrk", [128], "gpu")).all()
    assert model.samples("gemm", [192], "gpu")[0] == 0


def test_the_regressions_are_uncalibrated_for_an_unseen_kernel():
    for model in (RegressionModel(), NonLinearRegressionModel()):
        assert np.isnan(model.fit(noisy()).predict("syrk", [128], "cpu")).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_is_deterministic(name):
    params = {"params": FitParams(max_iter=30)} if name == "learned" else {}
    first = type(make_model(name))(**params).fit(noisy()).predict("potrf", SIZES, "gpu")
    again = type(make_model(name))(**params).fit(noisy()).predict("potrf", SIZES, "gpu")
    assert np.isfinite(first).all()
    assert np.array_equal(first, again)


def test_learned_model_fits_kernel_times_within_the_noise_where_it_was_trained():
    model = LearnedModel(FitParams(max_iter=100)).fit(noisy())
    predicted = model.predict("gemm", SIZES, "cpu")
    assert predicted == pytest.approx(2e-9 * SIZES**3.0, rel=0.15)


def test_kernel_features_are_the_retrain_features_of_a_kernel_call():
    features = kernel_features(
        np.array(["gemm", "potrf"], dtype=object),
        np.array([100, 100]),
        np.array(["cpu", "gpu"], dtype=object),
    )
    assert features.shape == (2, len(FEATURE_NAMES))
    assert features[0, 0] == pytest.approx(np.log(2 * 100**3 / 1e9))
    assert list(features[:, FEATURE_NAMES.index("is_gpu")]) == [0.0, 1.0]


def test_an_unknown_model_name_is_refused():
    with pytest.raises(ValueError, match="unknown performance model"):
        make_model("oracle")


def test_observations_refuse_impossible_values():
    with pytest.raises(InvalidObservations, match="> 0"):
        Observations.of("gemm", [128], "cpu", [0.0])
    with pytest.raises(InvalidObservations, match="device"):
        Observations.of("gemm", [128], "fpga", [1.0])
    with pytest.raises(InvalidObservations, match="one kernel"):
        Observations(np.array(["gemm"]), np.array([1, 2]), np.array(["cpu"]), np.array([1.0]))


def test_a_schedule_is_observed_as_its_kernels_true_times_without_staging() -> None:
    scenario = Scenario.build(
        tiled_workload("cholesky", 4, 512),
        Cluster.homogeneous_kinds(2, 1),
        kernel_profile("v100-skylake-mcsweeney2020"),
        seed=3,
    )
    truth = scenario.truth
    schedule = simulate(scenario, make_policy("heft"), np.random.default_rng(0))
    seen = observed(truth, schedule)
    assert seen.count == truth.num_tasks  # heft places whole tasks
    staging = transfer_time(truth.workload, truth.cluster)
    tasks = np.arange(truth.num_tasks)
    ran = schedule.device
    np.testing.assert_array_equal(seen.seconds, truth.exec_time[tasks, ran] - staging[tasks, ran])
    kinds = np.where(truth.cluster.kind[ran] == 1, "gpu", "cpu")
    assert seen.device.tolist() == kinds.tolist()
    names = [truth.workload.category_names[c] for c in truth.workload.category]
    assert seen.kernel.tolist() == names
    assert set(seen.size.tolist()) == {512}


@pytest.mark.parametrize("name", ["history", "regression", "nl_regression"])
def test_a_state_read_back_through_json_predicts_bit_identically(name):
    model = make_model(name).fit(noisy())
    stored = json.loads(json.dumps(model.to_state()))
    again = model_from_state(name, stored)
    for kernel, device in (("gemm", "cpu"), ("potrf", "gpu"), ("syrk", "cpu")):
        first, second = model.predict(kernel, SIZES, device), again.predict(kernel, SIZES, device)
        np.testing.assert_array_equal(first, second)  # NaN where both are uncalibrated
    assert np.isfinite(again.predict("gemm", SIZES, "cpu")).all()


def test_a_history_state_keeps_its_counts_and_minimum():
    model = HistoryModel(minimum_samples=13).fit(noisy())
    again = model_from_state("history", json.loads(json.dumps(model.to_state())))
    assert isinstance(again, HistoryModel) and again.minimum_samples == 13
    assert np.isnan(again.predict("gemm", SIZES, "cpu")).all()  # 12 draws per size < 13
    assert again.samples("gemm", SIZES, "cpu").tolist() == [12] * SIZES.size


def test_a_learned_state_keeps_its_parameters_but_not_its_estimator():
    model = LearnedModel(FitParams(max_iter=20)).fit(noisy())
    again = model_from_state("learned", json.loads(json.dumps(model.to_state())))
    assert isinstance(again, LearnedModel) and again.params == FitParams(max_iter=20)
    assert again.estimator is None
    assert np.isnan(again.predict("gemm", SIZES, "cpu")).all()


def test_a_learned_model_fitted_on_nothing_is_uncalibrated():
    nothing = Observations.concat([Observations.of("gemm", [], "cpu", [])])
    assert np.isnan(LearnedModel().fit(nothing).predict("gemm", SIZES, "cpu")).all()


def _heft_and_greedy():
    scenario = Scenario.build(
        tiled_workload("cholesky", 6, 512),
        Cluster.homogeneous_kinds(2, 1),
        kernel_profile("v100-skylake-mcsweeney2020"),
        seed=3,
    )
    schedules = [
        simulate(scenario, make_policy(name), np.random.default_rng(0))
        for name in ("heft", "cpu_only")
    ]
    return scenario.truth, schedules


def test_a_run_observes_each_task_once_per_kind_of_device():
    truth, (heft, cpu_only) = _heft_and_greedy()
    seen = observed_once(truth, [heft, cpu_only], limit=10_000)
    on_gpu = int(np.sum(truth.cluster.kind[heft.device] == 1))
    # cpu_only runs every task on a core; heft's runs on cores are the same draws again.
    assert seen.count == truth.num_tasks + on_gpu
    assert int(np.sum(seen.observations().device == "gpu")) == on_gpu
    # Coded: each kind of device and kernel named once, sorted, and indexed.
    assert seen.devices == ("cpu", "gpu") and list(seen.kernels) == sorted(seen.kernels)
    named = seen.observations()
    assert named.kernel.tolist() == [seen.kernels[k] for k in seen.kernel]
    assert observed_once(truth, [heft, heft], limit=10_000).count == truth.num_tasks


def test_a_run_observes_at_most_the_limit_spread_over_its_tasks():
    truth, (heft, cpu_only) = _heft_and_greedy()
    every = observed_once(truth, [heft, cpu_only], limit=10_000)
    some = observed_once(truth, [heft, cpu_only], limit=7)
    assert some.count == 7
    again = observed_once(truth, [heft, cpu_only], limit=7)
    np.testing.assert_array_equal(some.seconds, again.seconds)
    assert set(some.seconds.tolist()) <= set(every.seconds.tolist())
    assert some.seconds[0] == every.seconds[0] and some.seconds[-1] == every.seconds[-1]


@pytest.mark.parametrize("limit", [10_000, 50, 7, 1])
def test_what_a_run_observes_equals_one_pass_over_its_executions(limit):
    """observed_once against a plain loop over each schedule's whole tasks in order, keeping
    the first execution of each (task, kind of device), in (task, kind) order, then spread."""
    truth, schedules = _heft_and_greedy()
    first: dict[tuple[int, str], tuple] = {}
    for schedule in schedules:
        seen = observed(truth, schedule)
        for row, task in enumerate(np.flatnonzero(schedule.partner < 0)):
            columns = (seen.kernel[row], seen.size[row], seen.device[row], seen.seconds[row])
            first.setdefault((int(task), str(seen.device[row])), columns)
    keys = sorted(first)  # "cpu" before "gpu", as their codes
    if len(keys) > limit:
        keys = [keys[i] for i in np.linspace(0, len(keys) - 1, limit).astype(np.int64)]
    got = observed_once(truth, schedules, limit).observations()
    assert list(zip(got.kernel, got.size, got.device, got.seconds, strict=True)) == [
        first[key] for key in keys
    ]
