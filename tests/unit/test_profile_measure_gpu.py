"""The GPU side of `hms profile measure` (app/cli/measure/gpu.py), run end to end with NumPy and
SciPy standing in for CuPy and cupyx.scipy.linalg (CI has no GPU): each GPU kernel computes its
tile operation, the links are measured both ways, the profile written validates with both kinds
of device; and with CuPy absent the command says so and measures the CPU only.

No time is asserted: these are the measuring code's paths, not a GPU's speed."""

import dataclasses
import json
import sys

import numpy as np
import pytest
import scipy.linalg
from click.testing import CliRunner

from app.cli.main import main
from app.cli.measure import gpu as gpu_module
from app.cli.measure.gpu import (
    ArrayModule,
    GpuMeasurementFailed,
    NoGpu,
    check_kernel,
    device_kernel,
    find_gpu,
    measure_gpu_timings,
    measure_links,
)
from app.cli.measure.kernels import KERNELS
from app.cli.measure.profile import measure_profile, plan_for
from app.cli.measure.timing import Budget
from app.profilespec import ProfileSpec

TINY = plan_for(thorough=False, sizes=(8, 16), repeats=2, processes=1)


def numpy_stand_in() -> ArrayModule:
    """NumPy/SciPy in CuPy's place: host arrays are "device" arrays, nothing to wait for."""
    return ArrayModule(
        device="NumPy stand-in",
        xp=np,
        linalg=scipy.linalg,
        synchronize=lambda: None,
        to_host=np.asarray,
        copy_to_device=lambda host, device: np.copyto(device, host),
        copy_to_host=lambda device, host: np.copyto(host, device),
        empty_pinned=lambda n: np.empty(n),
        versions={"cupy": "stand-in", "cuda_runtime": None, "cuda_driver": None},
    )


@pytest.mark.parametrize("size", [8, 16, 40])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_each_gpu_kernel_computes_the_cpu_kernels_tile_operation(name, size):
    kernel = device_kernel(numpy_stand_in(), name)
    pristine = kernel.operands(size, np.random.default_rng(1))
    copies = [np.array(op) for op in pristine]
    assert kernel.residual(pristine, kernel.call(kernel.fresh(pristine))) < 1e-12
    assert all(np.array_equal(a, b) for a, b in zip(copies, pristine, strict=True))


def test_a_gpu_kernel_that_computes_a_wrong_tile_stops_the_measurement():
    gpu = numpy_stand_in()
    wrong = dataclasses.replace(gpu, to_host=lambda a: np.asarray(a) + 1.0)
    kernel = device_kernel(wrong, "gemm")
    with pytest.raises(GpuMeasurementFailed, match="gemm"):
        check_kernel(kernel, kernel.operands(8, np.random.default_rng(0)))


def test_every_gpu_cell_is_timed_with_the_budgets_repeats():
    cells = measure_gpu_timings(numpy_stand_in(), (8, 16), tuple(KERNELS), Budget(1, 3, 3, 0.0))
    assert [(name, size) for name, size, _ in cells] == [
        (name, size) for size in (8, 16) for name in KERNELS
    ]
    assert all(times.shape == (3,) and (times > 0).all() for _, _, times in cells)


def test_links_are_measured_in_both_directions():
    links = measure_links(numpy_stand_in(), large_bytes=2**20, repeats=3)
    assert [(link.source, link.target) for link in links] == [("cpu", "gpu"), ("gpu", "cpu")]
    assert all(link.latency_s >= 0 and link.bandwidth_bytes_per_s > 0 for link in links)


def test_a_profile_with_a_gpu_has_its_kernels_and_both_links():
    plan = dataclasses.replace(TINY, link_bytes=2**20)
    doc = measure_profile(plan, "with-gpu", "hms profile measure --gpu", gpu=numpy_stand_in())
    spec = ProfileSpec.model_validate(doc)
    json.dumps(doc, allow_nan=False)
    assert {d.kind for d in spec.devices} == {"cpu", "gpu"}
    assert {(link.source, link.target) for link in spec.links} == {("cpu", "gpu"), ("gpu", "cpu")}
    gpu_cells = {(t.kernel, t.size, t.contention) for t in spec.timings if t.device == "gpu"}
    assert gpu_cells == {(k, b, "alone") for k in KERNELS for b in (8, 16)}
    assert spec.provenance.machine.gpu == "NumPy stand-in"
    assert spec.provenance.libraries["cupy"] == "stand-in"
    profile = spec.to_profile()
    assert profile.link("cpu", "gpu").transfer_time(1024) > 0
    for t in spec.timings:
        assert profile.time(t.kernel, t.device, t.size, t.contention) == t.mean_s


def test_without_cupy_no_gpu_is_found(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    with pytest.raises(NoGpu, match="CuPy cannot be imported"):
        find_gpu()


ARGS = ["profile", "measure", "--sizes", "8", "--repeats", "2", "--processes", "1"]


def test_without_cupy_the_command_says_so_and_measures_the_cpu_only(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    out = tmp_path / "p.json"
    result = CliRunner().invoke(main, [*ARGS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "No CUDA GPU found (CuPy cannot be imported" in result.stderr
    assert "measuring the CPU only" in result.stderr
    spec = ProfileSpec.model_validate(json.loads(out.read_text()))
    assert [d.kind for d in spec.devices] == ["cpu"] and spec.links == []
    assert spec.provenance.machine.gpu is None


def test_gpu_asked_for_without_cupy_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    result = CliRunner().invoke(main, [*ARGS, "--gpu", "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 1
    assert "no CUDA GPU found" in result.stderr and "CuPy cannot be imported" in result.stderr
    assert not (tmp_path / "p.json").exists()


def test_the_command_measures_a_gpu_it_finds(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_module, "find_gpu", numpy_stand_in)  # `measure` imports it when run
    out = tmp_path / "p.json"
    result = CliRunner().invoke(main, [*ARGS, "--out", str(out), "--name", "box"])
    assert result.exit_code == 0, result.output
    assert "CUDA GPU found: NumPy stand-in" in result.stderr
    spec = ProfileSpec.model_validate(json.loads(out.read_text()))
    assert {d.kind for d in spec.devices} == {"cpu", "gpu"} and len(spec.links) == 2
    no_gpu = tmp_path / "cpu.json"
    result = CliRunner().invoke(main, [*ARGS, "--no-gpu", "--out", str(no_gpu), "--name", "box"])
    assert result.exit_code == 0, result.output
    doc = json.loads(no_gpu.read_text())
    assert [d["kind"] for d in doc["devices"]] == ["cpu"]
    assert doc["provenance"]["command"].endswith("--no-gpu")
