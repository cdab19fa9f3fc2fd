"""`hms` start-up: `hms --help` and `hms simulate` of a 3-task spec, each a fresh process, as
ratios against `python -c pass` measured in the same run (issue 22, item 12: goals 0.3 s and
0.8 s).

Every measurement is a new process of the checkout (PYTHONPATH = its root, so the console script
`hms` beside this Python runs that checkout's code), timed from its start to its exit: the wall
time, and its CPU time (user + system, from the children's rusage), which a shared machine's
waiting does not inflate. An untimed run of each command first fills numba's cache, the bytecode
caches and the model cache (`hms`'s own, as a user's commands share it): every number is a warm
start, what a user's second command sees. The rounds interleave the commands, so a busy spell of
the machine falls on all of them alike; each command is reported as its median over the rounds
with the spread (min-max), and as ratios of medians to the peer's. `hms simulate` of `learned`
is measured too, without a goal: the one spec that loads the ML stack (scikit-learn, skops) and
the bootstrap model.

Prints markdown to stdout, progress to stderr.

    .venv/bin/python bench/cli.py [--rounds 10] [--checkout DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The workload of the simulate commands: 3 tasks, so that what is timed is the start-up.
SPEC = {
    "workload": {"kind": "synthetic", "num_tasks": 3},
    "cluster": {"cpus": 2, "gpus": 1},
    "policies": ["round_robin", "eft", "heft"],
}
PEER = "python -c pass"
#: Wall-time goals (s) of the issue, on the CI machine.
GOALS = {"hms --help": 0.3, "hms simulate (3 tasks)": 0.8}
#: A timed command that takes longer than this (s) fails the bench instead of being waited for.
TIMEOUT_S = 120
#: The warm-up may train the bootstrap model: 2-3 s on an idle 2-core VM, minutes on a busy one.
WARM_UP_TIMEOUT_S = 900


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float


def commands(folder: Path) -> dict[str, list[str]]:
    """What is measured, by its label, the peer first; the specs are written into `folder`."""
    hms = str(Path(sys.executable).with_name("hms"))
    spec, learned = folder / "spec.json", folder / "learned.json"
    spec.write_text(json.dumps(SPEC))
    learned.write_text(json.dumps({**SPEC, "policies": ["learned"]}))
    return {
        PEER: [sys.executable, "-c", "pass"],
        "hms --help": [hms, "--help"],
        "hms simulate (3 tasks)": [hms, "simulate", "--spec", str(spec)],
        "hms simulate (3 tasks, learned)": [hms, "simulate", "--spec", str(learned)],
    }


def run(command: list[str], checkout: Path, timeout_s: float = TIMEOUT_S) -> Timing:
    """One fresh process of `checkout`, start to exit; it must succeed."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(
        command, env=env, cwd=checkout, capture_output=True, text=True, timeout=timeout_s
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    return Timing(wall, cpu)


def measure(rounds: int, checkout: Path) -> dict[str, list[Timing]]:
    with tempfile.TemporaryDirectory(prefix="hms-bench-cli-") as folder:
        measured = commands(Path(folder))
        _progress("untimed warm-up: numba's cache, bytecode, the bootstrap model")
        for command in measured.values():
            run(command, checkout, WARM_UP_TIMEOUT_S)
        timings: dict[str, list[Timing]] = {label: [] for label in measured}
        for i in range(rounds):
            _progress(f"round {i + 1}/{rounds}")
            for label, command in measured.items():
                timings[label].append(run(command, checkout))
    return timings


def report(timings: dict[str, list[Timing]]) -> str:
    peer_wall = statistics.median(t.wall_s for t in timings[PEER])
    peer_cpu = statistics.median(t.cpu_s for t in timings[PEER])
    lines = [
        "| command | wall s median | wall s min-max | CPU s median | wall / peer | CPU / peer "
        "| goal (wall) |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for label, runs in timings.items():
        walls = [t.wall_s for t in runs]
        wall, cpu = statistics.median(walls), statistics.median(t.cpu_s for t in runs)
        goal = GOALS.get(label)
        met = "met" if goal is not None and wall <= goal else "NOT met"
        lines.append(
            f"| {label} | {wall:.3f} | {min(walls):.3f}-{max(walls):.3f} | {cpu:.3f} "
            f"| **{wall / peer_wall:.1f}x** | {cpu / peer_cpu:.1f}x "
            f"| {'' if goal is None else f'≤ {goal} s: {met}'} |"
        )
        if goal is not None:
            verdicts.append(f"{label}: median {wall:.3f} s (goal ≤ {goal} s: {met})  ")
    return "\n".join([*lines, "", *verdicts])


def _machine() -> str:
    """Cores, system and the versions that weigh on start-up (the CPU's name: /proc/cpuinfo)."""
    import numba
    import numpy

    return (
        f"{len(os.sched_getaffinity(0))} cores, {platform.platform(terse=True)}; "
        f"Python {platform.python_version()}, numpy {numpy.__version__}, numba {numba.__version__}"
    )


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="timed runs of each command")
    parser.add_argument(
        "--checkout",
        type=Path,
        default=ROOT,
        help="measure the code of this checkout (e.g. an older commit's worktree) [this one]",
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    print(f"Machine: {_machine()}; load average at start {os.getloadavg()[0]:.2f}\n")
    timings = measure(args.rounds, args.checkout.resolve())
    print(report(timings))
    print(
        f"\nLoad average at end {os.getloadavg()[0]:.2f}; "
        f"bench wall time {time.perf_counter() - began:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
