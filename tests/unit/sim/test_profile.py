import math

import numpy as np
import pytest

from app.sim.profile import Z95, InvalidProfile, Link, NotInProfile, Profile, TimingCurve


def profile(**curves: TimingCurve) -> Profile:
    return Profile(
        name="test",
        devices=("cpu", "gpu"),
        curves={(kernel, "cpu", "alone"): curve for kernel, curve in curves.items()},
        links=(Link("cpu", "gpu", 1e-5, 1e10),),
    )


CUBIC = TimingCurve.from_points(sizes=[64, 128, 512], mean_s=[1e-4, 8e-4, 5.12e-2])


def test_times_are_the_measured_means_exactly_at_measured_sizes():
    curve = TimingCurve.from_points(sizes=[32, 100, 1000], mean_s=[3.3e-5, 1.7e-4, 0.123456789])
    times = profile(gemm=curve).times("gemm", "cpu", [32, 100, 1000])
    assert times.tolist() == [3.3e-5, 1.7e-4, 0.123456789]


def test_times_between_measured_sizes_are_linear_in_log_log():
    p = profile(gemm=CUBIC)
    # 128 -> 512 is a b^3 power law: any size in between follows it.
    assert p.time("gemm", "cpu", 256) == pytest.approx(8e-4 * 8, rel=1e-12)
    assert p.time("gemm", "cpu", 300) == pytest.approx(8e-4 * (300 / 128) ** 3, rel=1e-12)
    # Between two points, log t is linear in log b with that segment's slope.
    two = TimingCurve.from_points(sizes=[100, 400], mean_s=[1.0, 4.0])  # slope 1
    assert profile(gemm=two).time("gemm", "cpu", 200) == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize("size", [63, 513, 0, -1, math.inf, math.nan])
def test_sizes_outside_the_measured_range_are_refused_not_extrapolated(size):
    with pytest.raises(NotInProfile, match=r"64\.\.512"):
        profile(gemm=CUBIC).time("gemm", "cpu", size)


def test_an_unmeasured_kernel_device_or_contention_is_not_in_the_profile():
    p = profile(gemm=CUBIC)
    for kernel, device, contention in [
        ("syrk", "cpu", "alone"),
        ("gemm", "gpu", "alone"),
        ("gemm", "cpu", "all_busy"),
    ]:
        with pytest.raises(NotInProfile):
            p.time(kernel, device, 128, contention)
    with pytest.raises(NotInProfile):
        p.link("gpu", "cpu")
    assert p.link("cpu", "gpu").transfer_time(1e10) == pytest.approx(1 + 1e-5)


def test_the_same_seed_draws_the_same_times_bit_for_bit():
    curve = TimingCurve.from_points(
        sizes=[64, 128, 512], mean_s=[1e-4, 8e-4, 5e-2], std_s=[1e-5, 5e-5, 1e-3]
    )
    p = profile(gemm=curve)
    sizes = np.array([64, 100, 128, 500, 512] * 200)
    a = p.draws("gemm", "cpu", sizes, np.random.default_rng(2026))
    b = p.draws("gemm", "cpu", sizes, np.random.default_rng(2026))
    assert a.tobytes() == b.tobytes()
    assert p.draw("gemm", "cpu", 100, np.random.default_rng(7)) == p.draw(
        "gemm", "cpu", 100, np.random.default_rng(7)
    )
    assert a.tobytes() != p.draws("gemm", "cpu", sizes, np.random.default_rng(2027)).tobytes()


def test_draws_without_quantiles_are_log_normal_with_the_measured_mean_and_std():
    curve = TimingCurve.from_points(sizes=[128], mean_s=[2e-3], std_s=[4e-4])
    draws = profile(gemm=curve).draws(
        "gemm", "cpu", np.full(200_000, 128), np.random.default_rng(1)
    )
    assert draws.mean() == pytest.approx(2e-3, rel=0.005)
    assert draws.std() == pytest.approx(4e-4, rel=0.02)
    sigma2 = math.log1p(0.2**2)
    assert np.log(draws).mean() == pytest.approx(math.log(2e-3) - sigma2 / 2, abs=0.002)
    assert np.log(draws).var() == pytest.approx(sigma2, rel=0.02)


def test_draws_with_quantiles_match_all_three():
    curve = TimingCurve.from_points(
        sizes=[128], mean_s=[1.2e-3], std_s=[3e-4], quantiles_s=[[9e-4, 1e-3, 2e-3]]
    )
    draws = profile(gemm=curve).draws(
        "gemm", "cpu", np.full(200_000, 128), np.random.default_rng(3)
    )
    assert np.quantile(draws, [0.05, 0.5, 0.95]) == pytest.approx([9e-4, 1e-3, 2e-3], rel=0.01)


def test_a_draw_is_the_quantile_for_its_normal_deviate():
    curve = TimingCurve.from_points(sizes=[128], mean_s=[1.2e-3], quantiles_s=[[9e-4, 1e-3, 2e-3]])
    z = np.random.default_rng(5).standard_normal(1)[0]
    drawn = profile(gemm=curve).draw("gemm", "cpu", 128, np.random.default_rng(5))
    side = math.log(1e-3 / 9e-4) if z < 0 else math.log(2e-3 / 1e-3)
    assert drawn == pytest.approx(1e-3 * math.exp(side / Z95 * z), rel=1e-12)


def test_without_a_measured_spread_a_draw_is_the_mean_and_still_uses_one_deviate():
    p = profile(gemm=CUBIC)
    rng = np.random.default_rng(9)
    assert p.draws("gemm", "cpu", [128, 256], rng).tolist() == [8e-4, p.time("gemm", "cpu", 256)]
    reference = np.random.default_rng(9)
    reference.standard_normal(2)
    assert rng.standard_normal() == reference.standard_normal()


def test_draws_refuse_sizes_outside_the_measured_range():
    with pytest.raises(NotInProfile):
        profile(gemm=CUBIC).draws("gemm", "cpu", [128, 1024], np.random.default_rng(0))


def test_a_curve_with_unsorted_or_duplicate_sizes_is_sorted_or_refused():
    curve = TimingCurve.from_points(sizes=[512, 64], mean_s=[5e-2, 1e-4])
    assert curve.sizes.tolist() == [64, 512] and curve.mean_s.tolist() == [1e-4, 5e-2]
    with pytest.raises(InvalidProfile):
        TimingCurve.from_points(sizes=[64, 64], mean_s=[1e-4, 2e-4])
    with pytest.raises(InvalidProfile):
        TimingCurve.from_points(sizes=[64], mean_s=[0.0])
    with pytest.raises(ValueError, match="read-only"):
        curve.mean_s[0] = 1.0


def test_kernels_are_listed_in_the_canonical_order():
    assert profile(potrf=CUBIC, gemm=CUBIC).kernels == ("gemm", "potrf")


#: Three kernels whose curves differ in length and in the spread they give: quantiles, a std, none.
MIXED = {
    "gemm": TimingCurve.from_points(
        sizes=[64, 128, 512, 1024],
        mean_s=[1.1e-4, 8e-4, 5e-2, 0.41],
        std_s=[1e-5, np.nan, 2e-3, 1e-2],
        quantiles_s=[[9e-5, 1e-4, 1.5e-4], [7e-4, 7.8e-4, 1e-3], [np.nan] * 3, [0.39, 0.4, 0.45]],
    ),
    "potrf": TimingCurve.from_points(sizes=[32, 256], mean_s=[2e-5, 3e-3], std_s=[1e-6, 4e-4]),
    "trsm": CUBIC,
}


def mixed_calls(n: int, rng: np.random.Generator) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """n calls of MIXED's kernels, in no order, at sizes inside each curve's range, a third of
    them exactly at a measured size."""
    kernels = tuple(MIXED)
    calls = rng.integers(0, len(kernels), n)
    sizes = np.empty(n)
    for code, kernel in enumerate(kernels):
        mine = np.flatnonzero(calls == code)
        measured = MIXED[kernel].sizes
        between = np.exp(rng.uniform(np.log(measured[0]), np.log(measured[-1]), mine.size))
        sizes[mine] = np.where(mine % 3 == 0, rng.choice(measured, mine.size), between)
    return kernels, calls, sizes


def reference_draw(curve: TimingCurve, size: float, z: float) -> float:
    """The module docstring's draw, one call at a time in plain Python."""
    lo = max(i for i, measured in enumerate(curve.sizes) if measured <= size)
    hi = lo if curve.sizes[lo] == size else lo + 1
    w = (
        0.0
        if hi == lo
        else math.log(size / curve.sizes[lo]) / math.log(curve.sizes[hi] / curve.sizes[lo])
    )

    def loglog(values) -> float:
        return math.exp(math.log(values[lo]) + w * (math.log(values[hi]) - math.log(values[lo])))

    p05, p50, p95 = (loglog(curve.quantiles_s[:, j]) for j in range(3))
    if all(math.isfinite(q) for q in (p05, p50, p95)):
        return p50 * math.exp((math.log(p50 / p05) if z < 0 else math.log(p95 / p50)) / Z95 * z)
    cv = curve.std_s / curve.mean_s
    cv_here = cv[lo] + w * (cv[hi] - cv[lo])
    if math.isfinite(cv_here):
        sigma = math.sqrt(math.log1p(cv_here**2))
        return loglog(curve.mean_s) * math.exp(sigma * z - sigma**2 / 2)
    return loglog(curve.mean_s)


def test_draws_of_several_kernels_in_one_pass_equal_the_draws_kernel_by_kernel_bit_for_bit():
    p = profile(**MIXED)
    kernels, calls, sizes = mixed_calls(6000, np.random.default_rng(11))
    together = p.draws_of_calls(kernels, calls, sizes, "cpu", np.random.default_rng(5))
    rng, one_by_one = np.random.default_rng(5), np.empty(sizes.size)
    for code, kernel in enumerate(kernels):
        mine = calls == code
        one_by_one[mine] = p.draws(kernel, "cpu", sizes[mine], rng)
    assert together.tobytes() == one_by_one.tobytes()
    means = np.empty(sizes.size)
    for code, kernel in enumerate(kernels):
        means[calls == code] = p.times(kernel, "cpu", sizes[calls == code])
    assert p.times_of_calls(kernels, calls, sizes, "cpu").tobytes() == means.tobytes()


def test_draws_of_several_kernels_follow_the_documented_formulas_draw_by_draw():
    p = profile(**MIXED)
    kernels, calls, sizes = mixed_calls(3000, np.random.default_rng(12))
    drawn = p.draws_of_calls(kernels, calls, sizes, "cpu", np.random.default_rng(8))
    # The normals in the documented order: kernel by kernel, each over its calls in order.
    z = np.empty(sizes.size)
    z[np.argsort(calls, kind="stable")] = np.random.default_rng(8).standard_normal(sizes.size)
    expected = [
        reference_draw(MIXED[kernels[call]], size, deviate)
        for call, size, deviate in zip(calls.tolist(), sizes.tolist(), z.tolist(), strict=True)
    ]
    assert drawn == pytest.approx(expected, rel=1e-12)


def test_calls_of_several_kernels_refuse_the_first_size_outside_its_kernels_range():
    p = profile(**MIXED)
    kernels = tuple(MIXED)
    calls, sizes = np.array([2, 1, 1, 0]), np.array([700.0, 300.0, 16.0, 128.0])
    with pytest.raises(
        NotInProfile, match=r"potrf on cpu \(alone\) for tile sizes 32\.\.256, not 300"
    ):
        p.times_of_calls(kernels, calls, sizes, "cpu")


def test_no_calls_draw_nothing_and_take_no_normal():
    rng, reference = np.random.default_rng(4), np.random.default_rng(4)
    none = np.zeros(0, np.int64)
    assert profile(**MIXED).draws_of_calls((), none, np.zeros(0), "cpu", rng).shape == (0,)
    assert rng.standard_normal() == reference.standard_normal()
