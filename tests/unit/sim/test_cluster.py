import numpy as np
import pytest

from app.sim.cluster import DEFAULT_CPU, DEFAULT_GPU, Cluster, HardwareProfile, calibrate

SIZES = [128, 256, 512, 1024, 2048, 4096, 8192]


def measured(core_gflops=50.0, threads=8, latency=1e-4, mb_per_s=20_000.0, gpu_gflops=20_000.0):
    n = np.array(SIZES, float)
    gflop, mb = 2 * n**3 / 1e9, 3 * n**2 * 4 / 1e6
    return {
        "profiled_sizes": SIZES,
        "cpu_times": (gflop / (core_gflops * threads)).tolist(),
        "gpu_times": (latency + mb / mb_per_s + gflop / gpu_gflops).tolist(),
        "cpu_threads": threads,
        "gpu_memory_mb": 81_559,
    }


def test_calibration_recovers_the_parameters_behind_a_profile():
    cpu, gpu = calibrate(HardwareProfile.from_json(measured()))
    assert cpu.speed == pytest.approx(50.0, rel=1e-6)
    assert gpu.speed == pytest.approx(20_000.0, rel=1e-3)
    assert gpu.bandwidth == pytest.approx(20_000.0, rel=1e-3)
    assert gpu.latency == pytest.approx(1e-4, rel=1e-3)
    assert gpu.memory == 81_559
    assert gpu.scalar_speed == pytest.approx(DEFAULT_GPU.scalar_speed * 50.0 / DEFAULT_CPU.speed)


def test_the_calibrated_model_reproduces_the_measured_speedup_curve():
    document = measured()
    cpu, gpu = calibrate(HardwareProfile.from_json(document))
    cluster = Cluster.homogeneous_kinds(1, 1, cpu, gpu)
    n = np.array(SIZES, float)
    gflop, mb = 2 * n**3 / 1e9, 3 * n**2 * 4 / 1e6
    model_gpu = cluster.latency[1] + mb / cluster.bandwidth[1] + gflop / cluster.speed[1]
    model_cpu = gflop / (cluster.speed[0] * 8)
    measured_speedup = np.array(document["cpu_times"]) / np.array(document["gpu_times"])
    assert np.allclose(model_cpu / model_gpu, measured_speedup, rtol=1e-3)
    assert measured_speedup[0] < 1 < measured_speedup[-1]  # GPU loses small, wins large


def test_a_profile_with_resident_data_fits_no_transfer_cost():
    document = measured(mb_per_s=float("inf"))
    _, gpu = calibrate(HardwareProfile.from_json(document))
    assert gpu.bandwidth == float("inf")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"cpu_times": [1.0]}, "same length"),
        ({"gpu_times": "fast"}, "lists of numbers"),
        ({"profiled_sizes": [1, 2], "cpu_times": [1, 1], "gpu_times": [1, 1]}, "at least 3"),
        ({"gpu_times": [-1.0] * len(SIZES)}, "positive"),
    ],
)
def test_bad_profiles_are_refused_with_a_reason(patch, message):
    with pytest.raises(ValueError, match=message):
        HardwareProfile.from_json({**measured(), **patch})
    with pytest.raises(ValueError, match="lacks"):
        HardwareProfile.from_json({"profiled_sizes": SIZES})


def test_device_names_and_groups():
    cluster = Cluster.homogeneous_kinds(3, 2)
    assert cluster.names() == ["cpu0", "cpu1", "cpu2", "gpu0", "gpu1"]
    assert [g.tolist() for g in cluster.model_groups(np.arange(5))] == [[0, 1, 2], [3, 4]]
    assert Cluster.processors(2).names() == ["p0", "p1"]
