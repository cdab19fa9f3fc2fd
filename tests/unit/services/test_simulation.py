"""The kernel model a run decides with when no observations are at hand (`hms simulate`)."""

import numpy as np
import pytest

from app.runspec import RunSpec, kernel_profile
from app.services.simulation import unfitted_kernel_model

PROFILE = "v100-skylake-mcsweeney2020"
MEASURED = "epyc-2c-vm-2026-12"  # measured alone and with every core busy


def spec(**fields):
    return RunSpec.model_validate(
        {
            "workload": {
                "kind": "tiled",
                "factorization": "cholesky",
                "tiles": 4,
                "tile_size": 256,
            },
            "cluster": {"cpus": 2, "gpus": 1, "profile": PROFILE} | fields.pop("cluster", {}),
            "policies": ["heft"],
            **fields,
        }
    )


def test_no_runtime_scheduler_no_model():
    assert unfitted_kernel_model(spec(perf_model="exact"), kernel_profile) is None


def test_exact_predicts_the_profiles_means_as_the_runs_truth_reads_them():
    profile = kernel_profile(PROFILE)
    alone = unfitted_kernel_model(spec(policies=["dmda"], perf_model="exact"), kernel_profile)
    assert alone is not None and alone.name == "exact"
    expected = profile.times("gemm", "cpu", np.array([256.0]))
    np.testing.assert_array_equal(alone.predict("gemm", [256], "cpu"), expected)
    measured = kernel_profile(MEASURED)
    cluster = {"gpus": 0, "profile": MEASURED, "contention": "all_busy"}
    busy = unfitted_kernel_model(
        spec(policies=["dmda"], perf_model="exact", cluster=cluster), kernel_profile
    )
    assert busy is not None
    contended = measured.times("gemm", "cpu", np.array([256.0]), "all_busy")
    np.testing.assert_array_equal(busy.predict("gemm", [256], "cpu"), contended)
    assert not np.array_equal(contended, measured.times("gemm", "cpu", np.array([256.0])))


@pytest.mark.parametrize("name", ["history", "regression", "nl_regression", "learned"])
def test_a_fitted_model_with_nothing_to_fit_on_is_uncalibrated(name):
    model = unfitted_kernel_model(spec(policies=["dmda"], perf_model=name), kernel_profile)
    assert model is not None and model.name == name
    assert np.isnan(model.predict("gemm", [256], "gpu")).all()
