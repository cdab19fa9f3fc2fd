import numpy as np
import pytest

from app.sim import costs
from app.sim.cluster import Cluster, DeviceKind
from app.sim.knowledge import Scenario
from app.sim.measured import measured_cluster
from app.sim.profile import Link, NotInProfile, Profile, TimingCurve
from app.sim.tiled import tiled_workload
from app.sim.workload import Workload

SIZES = [32, 128, 512]
#: Cubic-ish curves with a spread on both kinds of device.
CPU = TimingCurve.from_points(SIZES, [2e-5, 1.2e-3, 7.5e-2], std_s=[2e-6, 5e-5, 1e-3])
GPU = TimingCurve.from_points(SIZES, [3e-5, 1.4e-4, 9e-4], std_s=[1e-6, 7e-6, 5e-5])
#: The same means with no spread: a draw is the (interpolated) mean itself.
CPU_EXACT = TimingCurve.from_points(SIZES, [2e-5, 1.2e-3, 7.5e-2])
GPU_EXACT = TimingCurve.from_points(SIZES, [3e-5, 1.4e-4, 9e-4])
KERNELS = ("potrf", "trsm", "syrk", "gemm")


def kernel_profile(cpu: TimingCurve, gpu: TimingCurve, links: tuple[Link, ...] = ()) -> Profile:
    curves = {}
    for kernel in KERNELS:
        curves[kernel, "cpu", "alone"] = cpu
        curves[kernel, "gpu", "alone"] = gpu
    return Profile(name="test", devices=("cpu", "gpu"), curves=curves, links=links)


def cholesky(tiles: int, tile_size: int) -> Workload:
    return tiled_workload("cholesky", tiles, tile_size)


CLUSTER = Cluster.homogeneous_kinds(3, 2)


def test_the_same_seed_gives_bit_identical_truth_and_another_seed_other_times():
    profile, calls = kernel_profile(CPU, GPU), cholesky(5, 128)
    first = Scenario.measured(calls, CLUSTER, profile, seed=3)
    again = Scenario.measured(calls, CLUSTER, profile, seed=3)
    other = Scenario.measured(calls, CLUSTER, profile, seed=4)
    assert first.truth.exec_time.tobytes() == again.truth.exec_time.tobytes()
    assert not np.array_equal(first.truth.exec_time, other.truth.exec_time)
    assert np.array_equal(first.estimate.exec_time, other.estimate.exec_time)


def test_at_a_measured_size_the_truth_is_the_measured_time_plus_staging():
    profile, calls = kernel_profile(CPU_EXACT, GPU_EXACT), cholesky(4, 128)
    scenario = Scenario.measured(calls, CLUSTER, profile, seed=0)
    staging = costs.transfer_time(calls, CLUSTER)
    kernel_time = scenario.truth.exec_time - staging
    is_gpu = CLUSTER.kind == DeviceKind.GPU
    assert np.all(kernel_time[:, ~is_gpu] == 1.2e-3)
    assert np.allclose(kernel_time[:, is_gpu], 1.4e-4, rtol=1e-12)
    assert np.all(staging[:, ~is_gpu] == 0.0)


def test_between_measured_sizes_the_truth_is_interpolated_in_log_log():
    profile, calls = kernel_profile(CPU_EXACT, GPU_EXACT), cholesky(3, 64)
    truth = Scenario.measured(calls, CLUSTER, profile, seed=0).truth.exec_time
    # 64 is halfway between 32 and 128 in log(size): the geometric mean of the two times.
    assert np.allclose(truth[:, CLUSTER.cpus], np.sqrt(2e-5 * 1.2e-3), rtol=1e-12)


def test_draws_follow_the_measured_spread():
    profile, calls = kernel_profile(CPU, GPU), cholesky(12, 512)
    truth = Scenario.measured(calls, CLUSTER, profile, seed=1).truth.exec_time
    on_cpu = truth[:, CLUSTER.cpus[0]]
    assert on_cpu.std() > 0
    assert on_cpu.mean() == pytest.approx(7.5e-2, rel=0.01)
    assert on_cpu.std() == pytest.approx(1e-3, rel=0.25)


def test_identical_devices_meet_the_same_draw():
    profile, calls = kernel_profile(CPU, GPU), cholesky(4, 128)
    truth = Scenario.measured(calls, CLUSTER, profile, seed=2).truth.exec_time
    cpus, gpus = CLUSTER.cpus, CLUSTER.gpus
    assert np.all(truth[:, cpus] == truth[:, cpus[:1]])
    assert np.all(truth[:, gpus] == truth[:, gpus[:1]])


def test_the_estimate_is_the_datasheet_view():
    profile, calls = kernel_profile(CPU, GPU), cholesky(4, 256)
    scenario = Scenario.measured(calls, CLUSTER, profile, seed=0)
    workload = calls
    flops_over_peak = workload.size[:, None] / CLUSTER.speed[None, :]
    bytes_over_link = costs.transfer_time(workload, CLUSTER)
    assert np.allclose(scenario.estimate.exec_time, flops_over_peak + bytes_over_link, rtol=1e-12)


def test_a_measured_link_replaces_the_nominal_one_in_the_truth_only():
    link = Link("cpu", "gpu", latency_s=1e-5, bandwidth_bytes_per_s=2e10)
    profile, calls = kernel_profile(CPU_EXACT, GPU_EXACT, (link,)), cholesky(3, 128)
    scenario = Scenario.measured(calls, CLUSTER, profile, seed=0)
    gpus = CLUSTER.gpus
    assert np.all(scenario.truth.cluster.bandwidth[gpus] == 2e4)  # MB/s
    assert np.all(scenario.truth.cluster.latency[gpus] == 1e-5)
    assert scenario.estimate.cluster is CLUSTER
    staging = 1e-5 + calls.memory / 2e4
    assert np.allclose(scenario.truth.exec_time[:, gpus[0]], 1.4e-4 + staging, rtol=1e-12)


def test_without_a_measured_link_the_truth_uses_the_nominal_one():
    assert measured_cluster(CLUSTER, kernel_profile(CPU, GPU)) is CLUSTER


@pytest.mark.parametrize("tile_size", [16, 1024])
def test_a_tile_size_outside_the_measured_range_is_not_extrapolated(tile_size):
    with pytest.raises(NotInProfile, match="no extrapolation"):
        Scenario.measured(cholesky(2, tile_size), CLUSTER, kernel_profile(CPU, GPU), seed=0)


def test_a_kernel_the_profile_lacks_is_refused():
    calls = tiled_workload("lu", 2, 128)
    with pytest.raises(NotInProfile, match="getrf"):
        Scenario.measured(calls, CLUSTER, kernel_profile(CPU, GPU), seed=0)
