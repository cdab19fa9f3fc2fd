import numpy as np
import pytest

from app.sim.cluster import Cluster
from app.sim.generators import LayeredDagParams, SyntheticParams, layered_dag, synthetic_workload
from app.sim.kernelmix import TILES_TOUCHED, KernelMix
from app.sim.knowledge import Scenario
from app.sim.profile import NotInProfile, Profile, TimingCurve
from app.sim.tiled import FACTORIZATIONS, TiledDag, kernel_flops
from tests.unit.sim.conftest import V100, V100_MIX, synthetic_problem, topcuoglu_problem


def profile_of(curves: dict[tuple[str, str], list[int]]) -> Profile:
    """A profile timing each (kernel, device) at the given sizes (times irrelevant here)."""
    return Profile(
        name="t",
        devices=("cpu", "gpu"),
        curves={
            (kernel, device, "alone"): TimingCurve.from_points(sizes, [1e-3 * s for s in sizes])
            for (kernel, device), sizes in curves.items()
        },
    )


def test_the_mix_takes_the_kernels_timed_on_every_kind_at_their_common_sizes():
    profile = profile_of(
        {
            ("gemm", "cpu"): [32, 64, 512],
            ("gemm", "gpu"): [64, 1024],
            ("potrf", "cpu"): [32, 128],  # not on the GPU: left out of a CPU+GPU mix
            ("trsm", "cpu"): [32, 64],
            ("trsm", "gpu"): [128, 256],  # no common size: left out
        }
    )
    mix = KernelMix.of(profile, ["cpu", "gpu"])
    assert (mix.kernels, mix.low, mix.high) == (("gemm",), (64,), (512,))
    cpu_only = KernelMix.of(profile, ["cpu"])
    assert cpu_only.kernels == ("gemm", "trsm", "potrf")
    with pytest.raises(NotInProfile, match="no kernel on every kind"):
        KernelMix.of(profile_of({("gemm", "cpu"): [32, 64]}), ["cpu", "gpu"])


def test_drawn_tasks_are_kernel_calls_within_the_measured_range():
    drawn = V100_MIX.draw(20_000, np.random.default_rng(0))
    assert drawn.category_names == ("gemm", "syrk", "trsm", "potrf")
    assert drawn.tile_size.dtype == np.int64
    assert drawn.tile_size.min() == 32 and drawn.tile_size.max() == 1024
    for code, kernel in enumerate(drawn.category_names):
        tasks = drawn.category == code
        assert tasks.mean() == pytest.approx(0.25, abs=0.02)  # uniform over the four kernels
        b = drawn.tile_size[tasks]
        flops = np.array([kernel_flops(kernel, int(x)) for x in b])
        np.testing.assert_allclose(drawn.size[tasks], flops / 1e9, rtol=1e-12)
        np.testing.assert_allclose(drawn.memory[tasks], TILES_TOUCHED[kernel] * b**2 * 8 / 1e6)
    # Log-uniform over 32..1024 (5 octaves): each octave holds about a fifth of the tasks.
    octave = np.floor(np.log2(drawn.tile_size / 32)).clip(0, 4)
    shares = np.bincount(octave.astype(int), minlength=5) / drawn.tile_size.size
    np.testing.assert_allclose(shares, 0.2, atol=0.02)
    assert np.all(drawn.intensity == 1.0)


def test_the_mix_is_deterministic_for_a_generator_state():
    first = V100_MIX.draw(500, np.random.default_rng(9))
    again = V100_MIX.draw(500, np.random.default_rng(9))
    np.testing.assert_array_equal(first.tile_size, again.tile_size)
    np.testing.assert_array_equal(first.category, again.category)


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_tiles_touched_agree_with_the_tile_algorithms(factorization):
    dag = TiledDag.build(factorization, 4, 8)
    for task in dag.tasks:
        touched = {(block.row, block.col) for block in (*task.reads, *task.writes)}
        assert len(touched) == TILES_TOUCHED[task.kernel], task


def test_generated_workloads_carry_their_kernels_and_tile_sizes():
    online = synthetic_workload(
        SyntheticParams(num_tasks=300, mix=V100_MIX), np.random.default_rng(1)
    )
    dag = layered_dag(LayeredDagParams(num_tasks=300, mix=V100_MIX), np.random.default_rng(1))
    for workload in (online, dag):
        assert workload.category_names == V100_MIX.kernels
        assert workload.tile_size is not None and workload.tile_size.shape == (300,)


def test_generated_workloads_run_on_the_profiles_times():
    workload = synthetic_workload(
        SyntheticParams(num_tasks=400, mix=V100_MIX), np.random.default_rng(2)
    )
    cluster = Cluster.homogeneous_kinds(2, 1)
    truth = Scenario.build(workload, cluster, V100, seed=0).truth.exec_time
    # One core's draws center on the profile's mean for each task's kernel and tile size.
    cpu = truth[:, 0]
    means = np.array(
        [
            V100.time(workload.category_names[c], "cpu", b)
            for c, b in zip(workload.category, workload.tile_size, strict=True)
        ]
    )
    assert np.median(cpu / means) == pytest.approx(1.0, abs=0.05)


def test_tasks_that_call_no_kernel_run_as_the_cost_model_says():
    problem = topcuoglu_problem()
    scenario = Scenario.build(problem.workload, problem.cluster, V100, seed=3)
    np.testing.assert_array_equal(scenario.truth.exec_time, problem.workload.exec_cost)
    abstract = synthetic_problem(n=200)  # a TaskMix: sizes in GFLOP, no kernel
    scenario = Scenario.build(abstract.workload, abstract.cluster, V100, seed=3)
    np.testing.assert_array_equal(scenario.truth.exec_time, abstract.exec_time)
    assert scenario.truth is scenario.estimate
