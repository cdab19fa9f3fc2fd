"""A 96-run study fanned out over a worker with 1 pool process, then over one with 2, and the
API's time to accept a 10,000-run study: ratios against peers measured in the same run.

1. The study: a synthetic workload of 30,000 tasks (about 0.1 s of simulation) on 4 CPU cores
   and 1-2 GPUs, policies greedy, heft and oracle, grid {"workload.load": [0.5, 0.7, 0.9],
   "cluster.gpus": [1, 2]} x 16 repetitions
   = 96 runs, submitted through the API to a fresh `celery worker --concurrency N` (N = 1, then
   2; nothing else consumes). Its wall time is the study row's `created_at` -> `finished_at`:
   from the submission's insert (PostgreSQL's now()) to the aggregation's commit (the worker's
   clock; same machine), so it covers the fan-out, all runs and the aggregation. Speed-up =
   wall(1) / wall(2); goal >= 1.7.
2. Per-run overhead = wall x N / runs - one run's simulation time; goal <= 20 ms. The simulation
   time is the mean CPU time of `simulate_spec` in the study's own runs, clocked in the pool
   processes (bench/hooks/simclock.py): this machine's speed drifts by 10-20 % from one minute
   to the next, and a simulation time measured apart, minutes later, moved the overhead by as
   much as the changes it measured (the same mean in this process, after the studies, is
   printed beside it). A simulation that waits for a core is not slower in CPU time: that wait
   is overhead, what the other processes' work costs the run. The overhead is split into the
   part inside a run's execution (its `started_at` -> `finished_at` in the database, minus the
   simulation: claiming it, sampling, digesting its schedules, writing results, samples and
   observations) and the rest (the finish's commit, the study's check after each run,
   messages, Celery, the aggregation, waiting for a core).
   Each study runs twice: with what a worker stores per run by default (its results with each
   policy's schedule digest — the schedules themselves are recomputed on read, none stored for
   these policies — and 1000 sampled tasks for training) and with results only
   (HMS_SCHEDULE_MAX_TASKS=0, HMS_SAMPLES_PER_RUN=0, HMS_PERF_OBSERVATIONS_PER_RUN=0), which
   shows what the samples and kernel observations cost. The
   goals are judged on the defaults. Also printed: the CPU each study used per run, by process
   (pool processes, worker main, PostgreSQL, Valkey, API, the bench), against the capacity
   (wall x cores / runs): with as many pool processes as cores the study is CPU-bound, and its
   overhead is the CPU spent besides the simulation, by whichever process. And each study's
   start (its insert to its first run's start) and end (its last run's finish to its
   aggregation's commit), when the pool processes wait: the worker is started for each study,
   so its start includes a fresh pool process's first use of the broker and the database.
3. Accept: POST /api/v1/studies of a 10,000-run study (100 loads x 100 repetitions, 2000-task
   runs), with no worker running; the client's time from the request to the 202, the server's
   insert-to-sent time (the study row's `created_at` -> `enqueued_at`: inserting the 10,000 runs,
   the commit, sending the fan-out message) and, for reference, planning the same study in this
   process (`plan_runs`: validating every cell, the API's work before its transaction). Goal:
   well under 1 s (the verdict asks for under 0.5 s, median of the submissions).

Starts its own PostgreSQL (durable, as `make run` does) and Valkey in a temporary folder, the
API under uvicorn and the workers, as subprocesses with the commands tests/processes.py uses.
Markdown to stdout, progress to stderr; nothing is kept.

    .venv/bin/python bench/study.py [--tasks 30000] [--repetitions 16] [--accepts 3]
                                    [--defaults-only]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ["greedy", "heft", "oracle"]
GRID = {"workload.load": [0.5, 0.7, 0.9], "cluster.gpus": [1, 2]}
SPEEDUP_GOAL = 1.7
OVERHEAD_GOAL_S = 0.020
ACCEPT_GOAL_S = 1.0
#: What a worker stores per run besides the results and their schedule digests: the defaults
#: (1000 sampled tasks for training and 5000 kernel observations for the tenant's performance
#: models; no per-task schedule for these policies, which decide on the spec alone:
#: app/services/schedules.py), and nothing, to show what the samples and observations cost.
#: (Until 2026-12-06 evening "results only" left the observations on: the tables before then.)
DEFAULT_STORAGE = "digests + samples + observations"
RESULTS_ONLY = "results only"
STORAGE = {
    DEFAULT_STORAGE: {},
    RESULTS_ONLY: {
        "HMS_SCHEDULE_MAX_TASKS": "0",
        "HMS_SAMPLES_PER_RUN": "0",
        "HMS_PERF_OBSERVATIONS_PER_RUN": "0",
    },
}
#: How long (s) a study may take before the bench gives up on it.
STUDY_TIMEOUT_S = 240


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A subprocess in its own process group, output in a log file (as tests/processes.py)."""

    def __init__(
        self, name: str, command: list[str], logs: Path, ready: str, env: dict[str, str] | None
    ) -> None:
        self.log_path = logs / f"{name}-{secrets.token_hex(3)}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while ready not in self.log_path.read_text(errors="replace"):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM the group (Celery's warm shutdown), SIGKILL it after 20 s."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._log.close()


def start_worker(
    concurrency: int, logs: Path, env: dict[str, str], include: tuple[str, ...] = ()
) -> Process:
    """A worker with `concurrency` pool processes; `include`: modules of bench/hooks/ it imports
    (not benches: `make bench` runs every bench/*.py)."""
    command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
               "--queues", "simulations,training", "--concurrency", str(concurrency),
               "--hostname", f"bench-{concurrency}-{secrets.token_hex(3)}@localhost",
               "--loglevel", "INFO", "--without-mingle", "--without-gossip"]  # fmt: skip
    if include:
        command += ["--include", ",".join(include)]
        here = str(Path(__file__).resolve().parent / "hooks")
        path = (here, os.getcwd(), os.environ.get("PYTHONPATH"))
        env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, path))}
    return Process(f"worker-{concurrency}", command, logs, " ready.", env)


def start_api(port: int, logs: Path, env: dict[str, str] | None = None) -> Process:
    """The API as every launcher runs it (app/devstack/api_server.py); `env` is added."""
    from app.devstack.api_server import api_command

    return Process("api", api_command(port), logs, "Application startup complete", env)


@dataclass(frozen=True)
class Stack:
    """What `embedded_stack` started: its folder's `logs`, the API key, the servers' URLs."""

    logs: Path
    api_key: str
    database_url: str
    redis_url: str
    postgres: Any  # its EmbeddedPostgres, to restart it with other server settings


def embedded_stack(cleanup: ExitStack, name: str, env: dict[str, str] | None = None) -> Stack:
    """PostgreSQL (durable, as `make run` does) and Valkey started in a new temporary folder,
    the schema migrated; `cleanup` stops them and removes the folder. Their URLs, a key
    (`bench:<key>`) and `env` go into os.environ first, for this process (before any settings
    are read) and every process started from it."""
    root = Path(tempfile.mkdtemp(prefix=f"hms-bench-{name}-"))
    root.chmod(0o711)  # PostgreSQL's system user (we may be root) passes through to its data
    cleanup.callback(shutil.rmtree, root, ignore_errors=True)
    pg_port, redis_port = free_port(), free_port()
    pg_password, redis_password = secrets.token_hex(8), secrets.token_hex(8)
    api_key = "bench-" + secrets.token_hex(4)
    redis_url = f"redis://:{redis_password}@127.0.0.1:{redis_port}/0"
    os.environ.update(
        {
            "DATABASE_URL": f"postgresql+psycopg2://postgres:{pg_password}@127.0.0.1:{pg_port}/hms",
            "REDIS_URL": redis_url,
            "HMS_API_KEYS": f"bench:{api_key}",
            "HMS_DATA_DIR": str(root / "data"),
            "HMS_SUBMISSIONS_PER_MINUTE": "1000000",
            **(env or {}),
        }
    )
    from app.db.migrate import upgrade
    from app.devstack.postgres import EmbeddedPostgres
    from app.devstack.valkey import EmbeddedValkey

    log(f"starting PostgreSQL and Valkey under {root}")
    postgres = EmbeddedPostgres(root / "postgres", pg_port, pg_password)
    postgres.start()
    cleanup.callback(postgres.stop)
    valkey = EmbeddedValkey(root / "valkey", redis_port, redis_password)
    valkey.start()
    cleanup.callback(valkey.stop)
    upgrade(postgres.url)
    logs = root / "logs"
    logs.mkdir()
    return Stack(logs, api_key, postgres.url, redis_url, postgres)


def study_body(name: str, tasks: int, repetitions: int) -> dict[str, Any]:
    return {
        "name": name,
        "base": {
            "workload": {"kind": "synthetic", "num_tasks": tasks},
            "cluster": {"cpus": 4, "gpus": 1},
            "policies": POLICIES,
        },
        "grid": GRID,
        "repetitions": repetitions,
    }


def big_study_body(name: str) -> dict[str, Any]:
    """10,000 runs: 100 offered loads x 100 repetitions."""
    body = study_body(name, 2000, 100)
    body["grid"] = {"workload.load": [round(0.30 + 0.006 * i, 3) for i in range(100)]}
    return body


def submit(http: httpx.Client, body: dict[str, Any]) -> tuple[str, float]:
    """The study's id and the client's time (s) from the request to the 202."""
    started = time.perf_counter()
    response = http.post("/api/v1/studies", json=body)
    elapsed = time.perf_counter() - started
    if response.status_code != 202:
        raise RuntimeError(f"submission refused: {response.status_code} {response.text[:500]}")
    return response.json()["id"], elapsed


def study_row(study_id: str) -> Any:
    from app.db.models import Study
    from app.db.session import session_scope

    with session_scope() as session:
        return session.get(Study, study_id)


def study_runs(study_id: str) -> list[Any]:
    from sqlalchemy import select

    from app.db.models import Run
    from app.db.session import session_scope

    with session_scope() as session:
        return list(session.scalars(select(Run).where(Run.study_id == study_id)))


def seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def run_study(
    http: httpx.Client, workers: int, storage: str, args: argparse.Namespace, logs: Path
) -> dict:
    """The study on a fresh worker with `workers` pool processes; its figures."""
    runs = len(GRID["workload.load"]) * len(GRID["cluster.gpus"]) * args.repetitions
    log(f"study of {runs} runs, {workers} pool process(es), storing {storage}")
    clock = logs / f"simulations-{workers}-{secrets.token_hex(3)}.txt"
    env = {**STORAGE[storage], "HMS_BENCH_SIMCLOCK": str(clock)}
    worker = start_worker(workers, logs, env, include=("simclock",))
    try:
        name = f"bench: {workers} process(es), {storage}"
        cpu_before = cpu_seconds(worker)
        study_id, _ = submit(http, study_body(name, args.tasks, args.repetitions))
        deadline = time.monotonic() + STUDY_TIMEOUT_S
        while (study := study_row(study_id)).status == "running":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the study did not end within {STUDY_TIMEOUT_S} s")
            time.sleep(0.2)
        cpu_after = cpu_seconds(worker)
    finally:
        worker.stop()
    rows = study_runs(study_id)
    if study.status != "succeeded" or any(run.status != "succeeded" for run in rows):
        raise RuntimeError(f"study {study_id} ended {study.status}: {[r.status for r in rows]}")
    return {
        "workers": workers,
        "storage": storage,
        "study": study,
        "runs": rows,
        "simulation_s": statistics.fmean(float(line) for line in clock.read_text().split()),
        "wall_s": seconds(study.created_at, study.finished_at),
        "in_run_s": statistics.fmean(seconds(r.started_at, r.finished_at) for r in rows),
        "start_s": seconds(study.created_at, min(r.started_at for r in rows)),
        "end_s": seconds(max(r.finished_at for r in rows), study.finished_at),
        "attempts": sum(run.attempts for run in rows),
        "cpu_s": {group: cpu_after[group] - cpu_before.get(group, 0.0) for group in cpu_after},
    }


#: Who used the CPU while a study ran (`cpu_seconds`), in the order they are reported.
CPU_GROUPS = ("pool processes", "worker main", "PostgreSQL", "Valkey", "API", "this bench")


def cpu_seconds(worker: Process) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each of CPU_GROUPS: the worker's pool
    processes and its main process, PostgreSQL's processes, Valkey, the API (uvicorn) and this
    process. On 2 cores with 2 pool processes the study is CPU-bound, so its overhead is what
    these spend besides the simulation (a process that exits meanwhile is not counted)."""
    main = psutil.Process(worker.popen.pid)
    pool = {child.pid for child in main.children()}
    used = dict.fromkeys(CPU_GROUPS, 0.0)
    for process in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
        info = process.info
        if info["cpu_times"] is None:
            continue
        name, command = info["name"] or "", " ".join(info["cmdline"] or ())
        if info["pid"] in pool:
            group = "pool processes"
        elif info["pid"] == main.pid:
            group = "worker main"
        elif name.startswith("postgres"):
            group = "PostgreSQL"
        elif name.startswith("valkey"):
            group = "Valkey"
        elif "uvicorn" in command:
            group = "API"
        elif info["pid"] == os.getpid():
            group = "this bench"
        else:
            continue
        used[group] += info["cpu_times"].user + info["cpu_times"].system
    return used


def run_parts(runs: list[Any]) -> dict[str, float]:
    """Mean time (s) per run, in this process, over the runs' stored specs: `simulate_spec`,
    digesting its schedules (what a run does now: Schedule.digest), compressing them (what it
    did before: app/db/schedules.pack) and sampling its tasks for training."""
    import numpy as np

    from app.db.schedules import pack
    from app.ml.training import samples_from_run
    from app.runspec import RunSpec
    from app.runtime.threads import limit_native_threads
    from app.services.simulation import simulate_spec
    from app.settings import get_settings

    limit_native_threads()
    specs = [RunSpec.model_validate(run.spec) for run in runs]
    simulate_spec(specs[0])  # loads the engine's compiled loop: not part of a run
    names = ("simulation", "digests", "schedules", "samples")
    parts: dict[str, list[float]] = {name: [] for name in names}
    for spec in specs:
        started = time.perf_counter()
        simulation = simulate_spec(spec)
        simulated = time.perf_counter()
        for outcome in simulation.outcomes:
            outcome.schedule.digest()
        digested = time.perf_counter()
        for outcome in simulation.outcomes:
            pack(outcome.schedule)
        packed = time.perf_counter()
        rng = np.random.default_rng(spec.seed)
        samples_from_run(
            simulation.problem, simulation.outcomes, get_settings().samples_per_run, rng
        )
        parts["simulation"].append(simulated - started)
        parts["digests"].append(digested - simulated)
        parts["schedules"].append(packed - digested)
        parts["samples"].append(time.perf_counter() - packed)
    return {part: statistics.fmean(times) for part, times in parts.items()}


def measure_accepts(http: httpx.Client, count: int) -> list[dict[str, float]]:
    from app.studies.spec import StudySpec, plan_runs

    measured = []
    for i in range(count):
        body = big_study_body(f"bench: accept {i}")
        started = time.perf_counter()
        planned = sum(1 for _ in plan_runs(StudySpec.model_validate(body)))
        planning_s = time.perf_counter() - started
        study_id, client_s = submit(http, body)
        study = study_row(study_id)
        if study.total_runs != planned or study.enqueued_at is None:
            raise RuntimeError(
                f"study {study_id}: {study.total_runs} runs, sent {study.enqueued_at}"
            )
        measured.append(
            {
                "runs": planned,
                "client_s": client_s,
                "insert_to_sent_s": seconds(study.created_at, study.enqueued_at),
                "planning_s": planning_s,
            }
        )
        log(f"accepted {planned} runs in {client_s:.3f} s")
    return measured


def report(
    studies: list[dict], parts: dict[str, float], accepts: list[dict], args: argparse.Namespace
) -> None:
    runs = len(studies[0]["runs"])
    simulation_s = parts["simulation"]
    print(f"\n## Study fan-out: {runs} runs of {args.tasks:,} tasks ({', '.join(POLICIES)})\n")
    after = [s["simulation_s"] * 1000 for s in studies]
    print(
        f"Simulation per run in each study (CPU time, mean of its runs, clocked in the pool "
        f"processes; what its overhead subtracts): {', '.join(f'{ms:.1f}' for ms in after)} "
        "ms.\n"
    )
    print(
        f"Per run, in this process (mean of {runs}): simulation {simulation_s * 1000:.1f} ms; "
        f"digesting its {len(POLICIES)} schedules {parts['digests'] * 1000:.1f} ms "
        f"(compressing them, as runs did before: {parts['schedules'] * 1000:.1f} ms); "
        f"sampling its tasks for training {parts['samples'] * 1000:.1f} ms.\n"
    )
    print("| stored per run | pool processes | wall s | runs/s | speed-up vs fewest processes "
          "| wall x N / runs ms | overhead ms | in a run, not simulating ms | between runs ms "
          "| attempts |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    first = studies[0]["workers"]
    peers = {s["storage"]: s for s in studies if s["workers"] == first}
    for study in studies:
        n, wall, simulated = study["workers"], study["wall_s"], study["simulation_s"]
        per_run = wall * n / runs
        alone = sum(s["storage"] == study["storage"] for s in studies) == 1
        peer = "—" if alone else f"**{peers[study['storage']]['wall_s'] / wall:.2f}x**"
        print(
            f"| {study['storage']} | {n} | {wall:.2f} | {runs / wall:.2f} | {peer} "
            f"| {per_run * 1000:.1f} | **{(per_run - simulated) * 1000:.1f}** "
            f"| {(study['in_run_s'] - simulated) * 1000:.1f} "
            f"| {(per_run - study['in_run_s']) * 1000:.1f} | {study['attempts']} |"
        )
    _report_cpu(studies)
    _report_edges(studies, runs)
    same = all(s["study"].statistics == peers[s["storage"]]["study"].statistics for s in studies)
    print(f"\nSame statistics on every worker: {'yes' if same else 'NO'}.")
    print(f"\n## Accepting a {accepts[0]['runs']:,}-run study (POST -> 202, no worker)\n")
    print("| submission | client s | server insert -> sent s | planning in-process s "
          "| client / 1 s |")  # fmt: skip
    print("|---|---|---|---|---|")
    for i, accept in enumerate(accepts, start=1):
        print(
            f"| {i} | {accept['client_s']:.3f} | {accept['insert_to_sent_s']:.3f} "
            f"| {accept['planning_s']:.3f} | **{accept['client_s'] / ACCEPT_GOAL_S:.2f}x** |"
        )
    default = [s for s in studies if s["storage"] == DEFAULT_STORAGE]
    speedup = default[0]["wall_s"] / default[-1]["wall_s"]
    overhead = max(s["wall_s"] * s["workers"] / runs - s["simulation_s"] for s in default)
    accept = statistics.median(a["client_s"] for a in accepts)
    print(f"\n## Goals (stored per run: {DEFAULT_STORAGE}, the defaults)\n")
    met = _verdict(speedup >= SPEEDUP_GOAL)
    most = default[-1]["workers"]
    print(f"- speed-up {speedup:.2f}x with {most} pool processes (goal >= {SPEEDUP_GOAL}x): {met}")
    met = _verdict(overhead <= OVERHEAD_GOAL_S)
    print(f"- worst per-run overhead {overhead * 1000:.1f} ms (goal <= 20 ms): {met}")
    met = _verdict(accept < ACCEPT_GOAL_S / 2)
    print(
        f"- median accept {accept:.3f} s for {accepts[0]['runs']:,} runs "
        f"(goal well under 1 s): {met}"
    )
    if not same:
        raise SystemExit("the statistics differ between workers")


def _report_edges(studies: list[dict], runs: int) -> None:
    """The study's start (its insert to its first run's start: the fan-out message, creating
    and sending the runs, on a worker started for the study) and end (its last run's finish to
    its aggregation's commit), and what they add to the overhead: the pool processes wait
    then."""
    print("\n| stored per run | pool processes | start ms | end ms "
          "| (start + end) x N / runs ms |")  # fmt: skip
    print("|---|---|---|---|---|")
    for study in studies:
        edges = study["start_s"] + study["end_s"]
        print(
            f"| {study['storage']} | {study['workers']} | {study['start_s'] * 1000:.0f} "
            f"| {study['end_s'] * 1000:.0f} | {edges * study['workers'] / runs * 1000:.1f} |"
        )


def _report_cpu(studies: list[dict]) -> None:
    """Each study's CPU per run by who used it, against what the cores give a run."""
    runs = len(studies[0]["runs"])
    print(
        f"\nCPU per run (ms) while each study ran, by process; capacity = wall x "
        f"{os.cpu_count()} cores / runs (a study that uses it all is CPU-bound):\n"
    )
    print(f"| stored per run | pool processes | {' | '.join(CPU_GROUPS)} | total "
          "| total - simulation | capacity |")  # fmt: skip
    print("|---|---|" + "---|" * (len(CPU_GROUPS) + 3))
    for study in studies:
        used = [study["cpu_s"][group] / runs * 1000 for group in CPU_GROUPS]
        total = sum(used)
        capacity = study["wall_s"] * (os.cpu_count() or 1) / runs * 1000
        print(
            f"| {study['storage']} | {study['workers']} | "
            + " | ".join(f"{ms:.1f}" for ms in used)
            + f" | {total:.1f} | **{total - study['simulation_s'] * 1000:.1f}** "
            + f"| {capacity:.1f} |"
        )


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown CPU"


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=30_000, help="tasks per run")
    parser.add_argument("--repetitions", type=int, default=16, help="runs per cell (6 cells)")
    parser.add_argument("--workers", default="1,2", help="pool processes, the first the peer")
    parser.add_argument("--accepts", type=int, default=3, help="10,000-run submissions timed")
    parser.add_argument(
        "--defaults-only", action="store_true", help="skip the studies storing results only"
    )
    args = parser.parse_args()

    started = time.monotonic()
    with ExitStack() as cleanup:
        stack = embedded_stack(cleanup, "study")
        api_port = free_port()
        cleanup.callback(start_api(api_port, stack.logs).stop)
        headers = {"X-API-Key": stack.api_key}
        with httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=60
        ) as http:
            workers = [int(n) for n in args.workers.split(",")]
            plan = [(DEFAULT_STORAGE, n) for n in workers]
            if not args.defaults_only:
                plan += [(RESULTS_ONLY, n) for n in workers]
            studies = [run_study(http, n, storage, args, stack.logs) for storage, n in plan]
            log("timing the parts of a run in this process")
            parts = run_parts(studies[0]["runs"])
            accepts = measure_accepts(http, args.accepts)
        print(
            f"Ran {datetime.now():%Y-%m-%d}: {os.cpu_count()} cores ({cpu_model()}), "
            f"Python {platform.python_version()}; {time.monotonic() - started:.0f} s in all."
        )
        report(studies, parts, accepts, args)


if __name__ == "__main__":
    main()
