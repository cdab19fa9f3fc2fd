"""The predictor contest: how well each performance model (app/ml/perfmodels.py) predicts kernel
times it has not seen, on sizes it was trained on and on sizes it was not.

Observations are executions drawn from a shipped kernel profile (Profile.draws: the
distributions the simulator's runs meet), contention "alone", every kernel on every kind of
device the profile timed. Training: `--repeats` draws at each of the tile sizes TRAIN_SIZES
(generator seeded `--seed`). Test: `--repeats` fresh draws (generator seeded `--seed` + 1) at
each of TEST_SIZES: the training sizes again (*seen*) and 96, 192, 384, 768, 1024 (*unseen*:
between the training sizes, and beyond them at both edges). A size outside the range the
profile measured cannot be drawn (the profile does not extrapolate): it is skipped and listed.

The score is the mean absolute percentage error, 100 * |predicted - drawn| / drawn, averaged over
test draws, per (model, kernel, device kind) and over all of them. A model with no answer (NaN:
`history` at a size it never saw, or below its calibration minimum) is not scored there: those
test points are counted apart. `exact mean` is the profile's own mean time (what `oracle`
knows), the floor set by the draws' spread, not a contestant. Deterministic: the same seed
prints the same tables.

    PYTHONPATH=. .venv/bin/python bench/predictors.py [--seed 0] [--repeats 20]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from app.ml.perfmodels import MODEL_NAMES, Observations, make_model
from app.profilespec import load_shipped_profile, shipped_profile_names
from app.sim.profile import Profile

TRAIN_SIZES = (128, 256, 512)
TEST_SIZES = (96, 128, 192, 256, 384, 512, 768, 1024)
EXACT = "exact mean"

Predict = Callable[[str, np.ndarray, str], np.ndarray]


@dataclass(frozen=True)
class Score:
    """Absolute percentage errors of one predictor on one (kernel, device, size), and how many
    test points it had no answer for."""

    errors: np.ndarray
    unanswered: int


#: (kernel, device, size) -> its Score; per predictor's name.
Scores = dict[tuple[str, str, int], Score]
Results = dict[str, Scores]


def pairs(profile: Profile) -> list[tuple[str, str]]:
    """(kernel, device) the profile timed alone, in the profile's kernel and device order."""
    return [
        (kernel, device)
        for kernel in profile.kernels
        for device in profile.devices
        if (kernel, device, "alone") in profile.curves
    ]


def drawable(profile: Profile, kernel: str, device: str, sizes: tuple[int, ...]) -> list[int]:
    measured = profile.curve(kernel, device).sizes
    return [b for b in sizes if measured[0] <= b <= measured[-1]]


def draw(profile: Profile, sizes: tuple[int, ...], repeats: int, seed: int) -> Observations:
    """`repeats` executions at each drawable size of every pair, from one seeded generator."""
    rng = np.random.default_rng(seed)
    parts = []
    for kernel, device in pairs(profile):
        b = np.repeat(drawable(profile, kernel, device, sizes), repeats)
        parts.append(Observations.of(kernel, b, device, profile.draws(kernel, device, b, rng)))
    return Observations.concat(parts)


def score(predict: Predict, test: Observations) -> Scores:
    scores = {}
    for (kernel, device), rows in test.groups():
        for size in np.unique(test.size[rows]).tolist():
            drawn = test.seconds[rows[test.size[rows] == size]]
            predicted = float(predict(kernel, np.array([size]), device)[0])
            if np.isnan(predicted):
                scores[kernel, device, size] = Score(np.zeros(0), drawn.size)
            else:
                errors = 100.0 * np.abs(predicted - drawn) / drawn
                scores[kernel, device, size] = Score(errors, 0)
    return scores


def contest(profile: Profile, repeats: int, seed: int) -> Results:
    train = draw(profile, TRAIN_SIZES, repeats, seed)
    test = draw(profile, TEST_SIZES, repeats, seed + 1)
    results = {EXACT: score(lambda k, b, d: profile.times(k, d, b), test)}
    for name in MODEL_NAMES:
        results[name] = score(make_model(name).fit(train).predict, test)
    return results


def pooled(scores: Scores, keep: Callable[[str, str, int], bool]) -> tuple[float, int, int]:
    """(MAPE, points scored, points unanswered) over the keys `keep` accepts."""
    chosen = [s for key, s in scores.items() if keep(*key)]
    errors = np.concatenate([s.errors for s in chosen]) if chosen else np.zeros(0)
    mape = float(errors.mean()) if errors.size else float("nan")
    return mape, int(errors.size), sum(s.unanswered for s in chosen)


def seen(size: int) -> bool:
    return size in TRAIN_SIZES


def in_pair(pair: tuple[str, str], want_seen: bool, kernel: str, device: str, size: int) -> bool:
    return (kernel, device) == pair and seen(size) == want_seen


def at_size(at: int, kernel: str, device: str, size: int) -> bool:
    return size == at


def cell(mape: float) -> str:
    return "—" if np.isnan(mape) else f"{mape:.1f}"


def headline(results: Results) -> list[str]:
    lines = [
        "| model | seen MAPE % | unseen MAPE % | seen points scored / no answer "
        "| unseen points scored / no answer |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, scores in results.items():
        s = pooled(scores, lambda k, d, b: seen(b))
        u = pooled(scores, lambda k, d, b: not seen(b))
        lines.append(
            f"| {name} | {cell(s[0])} | {cell(u[0])} | {s[1]} / {s[2]} | {u[1]} / {u[2]} |"
        )
    return lines


def per_pair(results: Results, profile: Profile) -> list[str]:
    names = list(results)
    head = " | ".join(f"{n} seen | {n} unseen" for n in names)
    lines = [f"| kernel | device | {head} |", "|---|---|" + "---:|" * (2 * len(names))]
    for kernel, device in pairs(profile):
        row = []
        for name in names:
            for want in (True, False):
                mape = pooled(results[name], partial(in_pair, (kernel, device), want))[0]
                row.append(cell(mape))
        lines.append(f"| {kernel} | {device} | " + " | ".join(row) + " |")
    return lines


def per_size(results: Results, sizes: list[int]) -> list[str]:
    lines = [
        "| model | " + " | ".join(f"b={b}{'' if seen(b) else '*'}" for b in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for name, scores in results.items():
        row = [cell(pooled(scores, partial(at_size, at))[0]) for at in sizes]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return lines


def report(name: str, repeats: int, seed: int) -> list[str]:
    profile = load_shipped_profile(name).to_profile()
    results = contest(profile, repeats, seed)
    skipped = sorted(
        {
            (b, kernel, device)
            for kernel, device in pairs(profile)
            for b in TEST_SIZES
            if b not in drawable(profile, kernel, device, TEST_SIZES)
        }
    )
    sizes = sorted({size for _, _, size in results[EXACT]})
    lines = [f"### `{name}`", ""]
    if skipped:
        missing = sorted({b for b, _, _ in skipped})
        lines += [
            f"Skipped test sizes (outside the profile's measured range, cannot be drawn): "
            f"{', '.join(map(str, missing))}.",
            "",
        ]
    lines += [*headline(results), ""]
    lines += ["MAPE % per test size (* unseen), over every kernel and device kind:", ""]
    lines += [*per_size(results, sizes), ""]
    lines += ["MAPE % per kernel and device kind:", ""]
    lines += [*per_pair(results, profile), ""]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(
        f"Train sizes {TRAIN_SIZES}, test sizes {TEST_SIZES}, {args.repeats} draws per "
        f"(kernel, device, size), seed {args.seed} (train) / {args.seed + 1} (test).\n"
    )
    for name in shipped_profile_names():
        print("\n".join(report(name, args.repeats, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
