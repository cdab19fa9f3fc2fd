"""bench/fidelity.py's prediction: every task costs its kernel's profiled median (alone on one
core, all_busy on more) plus the executor's measured cost per task."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from app.profilespec import ProfileSpec
from app.sim.tiled import TiledDag

P50 = {"potrf": 5e-5, "trsm": 7e-5, "syrk": 6e-5, "gemm": 1e-4}


def _profile():
    timings = [
        {"kernel": k, "device": "cpu", "size": 16, "contention": c, "repeats": 9,
         "mean_s": 2 * p50 * scale, "std_s": 0.0,
         "quantiles_s": {"p05": p50 * scale, "p50": p50 * scale, "p95": 3 * p50 * scale}}
        for k, p50 in P50.items() for c, scale in (("alone", 1.0), ("all_busy", 1.5))
    ]  # fmt: skip
    document = {
        "schema_version": 1,
        "name": "fidelity-test",
        "provenance": {"source": "measured", "date": "2026-12-06",
                       "machine": {"cpu": "test"}, "command": "hms profile measure"},
        "measurement": {"operands": "cold", "pool_bytes": 1 << 26},
        "devices": [{"kind": "cpu", "name": "one core"}],
        "timings": timings,
    }  # fmt: skip
    return ProfileSpec.model_validate(document).to_profile()


@pytest.fixture
def fidelity(monkeypatch):
    monkeypatch.syspath_prepend("bench")  # fidelity.py imports its sibling fidelity_exec
    return importlib.import_module("fidelity")


def test_each_task_costs_its_kernels_median_plus_the_executor_overhead(fidelity):
    dag = TiledDag.build("cholesky", 3, 16)
    kernels = [t.kernel for t in dag.tasks]
    profile = _profile()
    one = fidelity.predicted_costs(dag, profile, 1, "p50", overhead_s=1e-6)
    assert one.shape == (len(dag.tasks), 1)
    assert np.allclose(one[:, 0], [P50[k] + 1e-6 for k in kernels])
    two = fidelity.predicted_costs(dag, profile, 2, "p50", overhead_s=2e-6)
    assert np.allclose(two, [[1.5 * P50[k] + 2e-6] * 2 for k in kernels])
    bare = fidelity.predicted_costs(dag, profile, 1, "mean")
    assert np.allclose(bare[:, 0], [2 * P50[k] for k in kernels])
