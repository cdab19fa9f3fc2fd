"""A process's first `learned` decision, and a `learned` run beside a busy process, as ratios
against peers measured in the same run.

Every measurement is a fresh `python` process (this file with `--child`), as `hms simulate` or a
worker's pool process is: it imports the project, limits its native threads as `hms simulate`
does (`app.runtime.threads.limit_native_threads`), and times `simulate_spec(SPEC)`, policies
["learned"].
An untimed process first fills numba's cache and the model cache.

1. Cold start. With an empty model cache (the bootstrap model is trained, then cached) and with a
   warm one, a process times its first `simulate_spec`, its second one (nothing left to load or
   compile: the startup-free time), and loading the cached model alone. Ratio: first /
   (second + load); goal <= 1.5 with a warm cache. Also with the engine's compiled loop loaded
   (numba, `app.sim.engine.warm_up`) before the first run, which separates numba's start-up from
   the model's; and for a worker's pool process: a process runs the worker's before-fork hook
   (workers/signals.py: compile the engine, load the model), forks, and the forked process runs
   the after-fork hook and measures.
2. A busy neighbour. The one-run process idle, then beside a CPU-bound process, alternating:
   a pure Python busy loop (one core), and a process fitting scikit-learn models on OpenMP
   threads on every core (the issue's case: another program's OpenMP threads). Ratio: busy /
   median idle wall time of the whole process; goal <= 2 for every run. The machine is shared,
   so each run also reports the CPU that other processes used meanwhile ("others", in cores,
   from /proc/stat), and each pair waits (a few seconds at most) for the machine to be quiet;
   the verdict counts only pairs where others used under QUIET_CORES, the goal's premise. With
   the thread limit, and with OpenMP/BLAS on every core (HMS_NATIVE_THREADS = cores, what a
   process got before the limit) for contrast.

Linux only (/proc). Prints markdown to stdout, progress to stderr; caches are temporary folders.

    .venv/bin/python bench/coldstart.py [--cold 2] [--warm 3] [--pairs 4] [--unlimited-pairs 2]
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SPEC = {
    "workload": {"kind": "synthetic", "num_tasks": 2000, "seed": 1},
    "cluster": {"cpus": 8, "gpus": 2},
    "policies": ["learned"],
}
COLD_START_GOAL = 1.5
NEIGHBOUR_GOAL = 2.0
#: Other processes using less CPU than this (cores) during a run leave the machine "quiet".
QUIET_CORES = 0.25
#: How long (s) a pair waits for a quiet machine before it runs anyway.
QUIET_WAIT_S = 8.0
#: A child that takes longer than this (s) is reported as timed out, not waited for.
CHILD_TIMEOUT_S = 60
#: The neighbours: a pure Python busy loop (one core), and a process fitting scikit-learn models
#: on OpenMP threads on every core (another program that does not limit itself). Each prints
#: "ready" once it starts to spin, and stops by itself after 300 s.
NEIGHBOURS = {
    "python loop": """
import time
print("ready", flush=True)
end = time.monotonic() + 300
while time.monotonic() < end:
    pass
""",
    "OpenMP fit": """
import time
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
rng = np.random.default_rng(0)
x, y = rng.random((20000, 9)), rng.random(20000)
print("ready", flush=True)
end = time.monotonic() + 300
while time.monotonic() < end:
    HistGradientBoostingRegressor(max_iter=20).fit(x, y)
""",
}
ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
Measurement = dict[str, Any]
Pairs = list[tuple[Measurement, Measurement]]


# --- the measured process ------------------------------------------------------------------------


def child(mode: str) -> None:
    """Runs in the fresh process: prints one JSON line of timings (seconds). All but `run` also
    time a second run and a bare model load; `engine-first` loads the engine's compiled loop
    (numba) before the first run, `pool` measures in a forked pool process."""
    began = time.perf_counter()
    from threadpoolctl import threadpool_info

    from app.ml import model_cache
    from app.ml.bootstrap import CACHE_NAME, cache_key
    from app.runspec import RunSpec
    from app.runtime.threads import limit_native_threads
    from app.services.simulation import simulate_spec
    from app.settings import get_settings

    if mode == "pool":
        _become_a_pool_process()
    else:
        limit_native_threads()
    if mode == "engine-first":
        from app.sim.engine import warm_up

        warm_up()
    spec = RunSpec.model_validate(SPEC)
    result: Measurement = {"startup_s": time.perf_counter() - began}
    result["first_s"] = _timed(lambda: simulate_spec(spec))
    if mode != "run":
        result["second_s"] = _timed(lambda: simulate_spec(spec))
        folder = get_settings().cache_dir
        result["load_s"] = _timed(lambda: model_cache.load(folder, CACHE_NAME, cache_key()))
    openmp = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]
    result["openmp_threads"] = max(openmp, default=0)
    print(json.dumps(result), flush=True)
    if mode == "pool":
        os._exit(0)


def _become_a_pool_process() -> None:
    """Run the worker's before-fork and after-fork hooks around a fork (concurrency 2); the
    parent waits for the child and exits with its status."""
    from types import SimpleNamespace

    from workers.signals import _after_fork, _prepare_before_fork

    _prepare_before_fork(sender=SimpleNamespace(concurrency=2))
    pid = os.fork()
    if pid != 0:
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status))
    _after_fork()


def _timed(action: Any) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


# --- the harness ---------------------------------------------------------------------------------


def measure(mode: str, cache_dir: Path, threads: int = 0, neighbour_pid: int = 0) -> Measurement:
    """Run one child: its timings, `wall_s` (the whole process, interpreter start included),
    `cpu_s` (its user + system CPU: what it computed, however long it waited) and `others`
    (cores other processes than it and the neighbour used meanwhile)."""
    env = {**os.environ, "HMS_MODEL_CACHE_DIR": str(cache_dir), "HMS_NATIVE_THREADS": str(threads)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    cpu, machine, beside = _children_cpu_s(), _machine_cpu_s(), _process_cpu_s(neighbour_pid)
    began = time.perf_counter()
    try:
        done = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"wall_s": float("inf"), "cpu_s": float("inf"), "others": float("nan")}
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"the measured process failed:\n{done.stderr}")
    result: Measurement = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    result["cpu_s"] = _children_cpu_s() - cpu
    beside = _process_cpu_s(neighbour_pid) - beside
    result["others"] = (_machine_cpu_s() - machine - result["cpu_s"] - beside) / wall
    return result


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_cpu_s() -> float:
    """CPU seconds every process has used since boot (user, nice, system, irq, softirq, steal)."""
    user, nice, system, _, _, irq, softirq, steal = Path("/proc/stat").read_text().split()[1:9]
    return sum(int(t) for t in (user, nice, system, irq, softirq, steal)) / TICKS


def _process_cpu_s(pid: int) -> float:
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def wait_for_quiet() -> None:
    """Wait (at most QUIET_WAIT_S) until other processes use under QUIET_CORES for 1 s."""
    deadline = time.monotonic() + QUIET_WAIT_S
    while time.monotonic() < deadline:
        before = _machine_cpu_s()
        time.sleep(1.0)
        if _machine_cpu_s() - before < QUIET_CORES:
            return


@contextmanager
def busy_neighbour(kind: str) -> Iterator[int]:
    """A CPU-bound process (NEIGHBOURS) for the duration, ended by its pid afterwards."""
    command = [sys.executable, "-c", NEIGHBOURS[kind]]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(0.2)  # let it start spinning
        yield process.pid
    finally:
        process.kill()
        process.wait()


def cold_start(cold: int, warm: int, warm_dir: Path) -> list[tuple[str, Measurement]]:
    rows = []
    for i in range(cold):
        _progress(f"cold start {i + 1}/{cold}: empty cache (trains the bootstrap model)")
        rows.append(("fresh process, empty cache", measure("first", warm_dir.parent / f"{i}")))
    for i in range(warm):
        _progress(f"cold start {i + 1}/{warm}: warm cache")
        rows.append(("fresh process, warm cache", measure("first", warm_dir)))
    for i in range(warm):
        _progress(f"cold start {i + 1}/{warm}: warm cache, engine loaded first")
        rows.append(("fresh, warm cache, engine first", measure("engine-first", warm_dir)))
    for i in range(warm):
        _progress(f"cold start {i + 1}/{warm}: worker pool process, warm cache")
        rows.append(("pool process, warm cache", measure("pool", warm_dir)))
    return rows


def neighbour(kind: str, pairs: int, threads: int, cache_dir: Path) -> Pairs:
    """(idle, beside the `kind` neighbour) measurements per pair, alternating."""
    results = []
    for i in range(pairs):
        label = f"{kind}, threads={threads or 'auto'}"
        _progress(f"neighbour ({label}) {i + 1}/{pairs}: idle, then busy")
        wait_for_quiet()
        idle = measure("run", cache_dir, threads)
        with busy_neighbour(kind) as pid:
            busy = measure("run", cache_dir, threads, neighbour_pid=pid)
        results.append((idle, busy))
    return results


# --- the report ----------------------------------------------------------------------------------


def cold_start_report(rows: list[tuple[str, Measurement]]) -> str:
    lines = [
        "| process | wall s | startup s | first s | second s | load s | rest of first s "
        "| first / (second + load) | OpenMP threads |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, r in rows:
        rest = r["first_s"] - r["second_s"] - r["load_s"]
        lines.append(
            f"| {kind} | {r['wall_s']:.2f} | {r['startup_s']:.2f} | {r['first_s']:.3f} "
            f"| {r['second_s']:.3f} | {r['load_s']:.3f} | {rest:.3f} | **{_ratio(r):.2f}x** "
            f"| {r['openmp_threads']} |"
        )
    lines.append("")
    kinds = (
        "fresh process, warm cache",
        "fresh, warm cache, engine first",
        "pool process, warm cache",
    )
    for kind in kinds:
        ratios = [_ratio(r) for k, r in rows if k == kind]
        verdict = "met" if max(ratios) <= COLD_START_GOAL else "NOT met"
        lines.append(
            f"{kind}: first / (second + load) median {statistics.median(ratios):.2f}x, worst "
            f"{max(ratios):.2f}x (goal <= {COLD_START_GOAL}x: {verdict})  "
        )
    return "\n".join(lines)


def _ratio(r: Measurement) -> float:
    return float(r["first_s"] / (r["second_s"] + r["load_s"]))


def neighbour_report(runs: dict[tuple[str, str], Pairs]) -> str:
    """One row per run; per (neighbour, threads), the verdict over the quiet pairs."""
    lines = [
        "| neighbour | our threads | idle wall s | idle CPU s | idle others | busy wall s "
        "| busy CPU s | busy others | busy / median idle | quiet |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for (kind, threads), pairs in runs.items():
        is_quiet = [max(i["others"], b["others"]) < QUIET_CORES for i, b in pairs]
        quiet = [pair for pair, q in zip(pairs, is_quiet, strict=True) if q]
        idle_median = statistics.median(i["wall_s"] for i, _ in quiet or pairs)
        for (idle, busy), q in zip(pairs, is_quiet, strict=True):
            lines.append(
                f"| {kind} | {threads} | {_number(idle['wall_s'])} | {_number(idle['cpu_s'])} "
                f"| {idle['others']:.2f} | {_number(busy['wall_s'])} | {_number(busy['cpu_s'])} "
                f"| {busy['others']:.2f} | {busy['wall_s'] / idle_median:.2f}x "
                f"| {'yes' if q else 'no'} |"
            )
        if not quiet:
            verdicts.append(f"{kind}, {threads}: no quiet pair (others >= {QUIET_CORES} cores)  ")
            continue
        worst = max(b["wall_s"] for _, b in quiet) / idle_median
        verdict = "met" if worst <= NEIGHBOUR_GOAL else "NOT met"
        verdicts.append(
            f"{kind}, {threads}: worst busy / median idle over {len(quiet)} quiet pairs "
            f"{worst:.2f}x (goal <= {NEIGHBOUR_GOAL}x: {verdict})  "
        )
    return "\n".join([*lines, "", *verdicts])


def _number(value: float) -> str:
    return f">{CHILD_TIMEOUT_S} (timed out)" if value == float("inf") else f"{value:.2f}"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _machine() -> str:
    """Cores, CPU, versions and the 1-minute load average (the machine is shared)."""
    import numpy
    import sklearn

    names = [
        line for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line
    ]
    cpu = names[0].split(":", 1)[1].strip() if names else platform.machine()
    return (
        f"{len(os.sched_getaffinity(0))} cores ({cpu}); Python {platform.python_version()}, "
        f"numpy {numpy.__version__}, scikit-learn {sklearn.__version__}; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--child", choices=["first", "engine-first", "pool", "run"], help=argparse.SUPPRESS
    )
    parser.add_argument("--cold", type=int, default=2, help="processes with an empty cache")
    parser.add_argument("--warm", type=int, default=3, help="processes with a warm cache")
    parser.add_argument("--pairs", type=int, default=4, help="idle/busy pairs, thread limit on")
    parser.add_argument("--unlimited-pairs", type=int, default=2, help="pairs, every core")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    began = time.perf_counter()
    print(f"Machine: {_machine()}\n")
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="hms-coldstart-") as folder:
        warm_dir = Path(folder) / "warm"
        _progress("untimed warm-up process: fills numba's cache and the model cache")
        measure("run", warm_dir)
        rows = cold_start(args.cold, args.warm, warm_dir)
        runs = {}
        for kind in NEIGHBOURS:
            runs[kind, "limited (auto)"] = neighbour(kind, args.pairs, 0, warm_dir)
            every_core = neighbour(kind, args.unlimited_pairs, cores, warm_dir)
            runs[kind, f"every core ({cores})"] = every_core
    print("## First `learned` decision in a fresh process\n")
    print(cold_start_report(rows))
    print("\n## A `learned` run beside a CPU-bound process\n")
    print(neighbour_report(runs))
    print(f"\nBench wall time: {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
