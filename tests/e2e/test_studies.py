"""Studies through real processes: the API under uvicorn submits, `celery worker` subprocesses
fan out, execute and aggregate, and the statistics are checked against numbers recomputed here,
with numpy and scipy, from the results the runs stored. Workers are killed mid-study and
mid-aggregation; a cancel stops what is left.

Aggregated exactly once is checked on database facts: the study row's `finished_at`,
`updated_at` and statistics do not change when a run ends again (a redelivered message, a
repeated sweep) after the aggregation.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from celery.result import AsyncResult
from scipy import stats
from sqlalchemy import create_engine, func, make_url, select, text

from app.db.models import Run, RunResult, Study, TrainingSampleSet
from app.db.session import session_scope
from app.db.studies import RUNS_PER_MESSAGE
from app.services import studies
from app.settings import get_settings
from tests.conftest import TEST_API_KEY
from tests.e2e.test_faults import RECOVERY
from tests.processes import Worker, broker_idle, wait_until
from tests.timing import SLOWDOWN, Limits, seconds_to_execute
from workers.celery_app import app as celery_app
from workers.queue import CeleryQueue, shared_task_id

AUTH = {"X-API-Key": TEST_API_KEY}
SAMPLES = 20
POLICIES = ["greedy", "heft", "oracle"]
#: The longest run of these studies (the cancelled one's): about 0.5 s on an idle 2-core machine.
LONGEST_RUN: dict[str, Any] = {
    "workload": {"kind": "synthetic", "num_tasks": 150_000},
    "cluster": {"cpus": 4, "gpus": 1},
    "policies": POLICIES,
}
#: 2 x 2 cells x 5 repetitions = 20 runs of about 0.1 s each (20k tasks: long enough for a kill
#: to land while a run executes, no longer).
STUDY: dict[str, Any] = {
    "name": "load x gpus",
    "base": {
        "workload": {"kind": "synthetic", "num_tasks": 20_000},
        "cluster": {"cpus": 4, "gpus": 1},
        "policies": POLICIES,
    },
    "grid": {"workload.load": [0.5, 0.9], "cluster.gpus": [1, 2]},
    "repetitions": 5,
}
RUNS = 20
#: The numeric columns of a stored result, as the statistics summarise them.
METRICS = (
    "makespan", "mean_flow_time", "p95_flow_time", "mean_slowdown", "energy", "cost",
    "mean_utilization", "slr", "speedup", "lower_bound", "gap_to_bound", "gap_to_oracle",
)  # fmt: skip

#: The undisturbed study's results and statistics, from whichever test ran it first.
_undisturbed: dict[str, Any] = {}


@pytest.fixture(scope="module")
def env(servers) -> dict[str, str]:
    """Runs here last under a second, so the limits can be short (a whole worker's unfinished
    message comes back after the visibility timeout): SLOWDOWN times what LONGEST_RUN takes now."""
    limits = Limits.above(SLOWDOWN * seconds_to_execute(LONGEST_RUN))
    return {
        **RECOVERY,
        **limits.env(),
        "HMS_SAMPLES_PER_RUN": str(SAMPLES),
        "HMS_MAX_RUN_ATTEMPTS": "5",
    }


@pytest.fixture
def http(env, api, clean_state):
    with httpx.Client(base_url=api.url, headers=AUTH, timeout=30) as client:
        yield client


def submit(http: httpx.Client, body: dict) -> uuid.UUID:
    response = http.post("/api/v1/studies", json=body)
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


def wait_ended(http: httpx.Client, study_id: uuid.UUID, timeout_s: float = 180) -> dict:
    study: dict = {}

    def ended() -> bool:
        nonlocal study
        study = http.get(f"/api/v1/studies/{study_id}").json()
        return study["status"] != "running"

    wait_until(ended, timeout_s, f"study {study_id} to end", every_s=0.2)
    return study


def study_row(study_id: uuid.UUID) -> tuple[str, Any, Any, Any]:
    """(status, finished_at, updated_at, statistics) as stored."""
    with session_scope() as session:
        study = session.get(Study, study_id)
        assert study is not None
        return study.status, study.finished_at, study.updated_at, study.statistics


def study_runs(study_id: uuid.UUID) -> list[Run]:
    with session_scope() as session:
        query = select(Run).where(Run.study_id == study_id)
        return list(session.scalars(query.order_by(Run.study_cell, Run.study_repetition)))


def running_run(study_id: uuid.UUID) -> Run | None:
    return next((run for run in study_runs(study_id) if run.status == "running"), None)


def stored_results(study_id: uuid.UUID) -> dict[tuple[int, int], dict[str, dict[str, Any]]]:
    """(cell, repetition) -> policy -> metric -> value, straight from run_results."""
    query = (
        select(Run.study_cell, Run.study_repetition, RunResult)
        .join(RunResult, RunResult.run_id == Run.id)
        .where(Run.study_id == study_id)
    )
    results: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    with session_scope() as session:
        for cell, repetition, result in session.execute(query):
            metrics = {metric: getattr(result, metric) for metric in METRICS}
            results.setdefault((cell, repetition), {})[result.policy] = metrics
    return results


def assert_every_run_succeeded_once(study_id: uuid.UUID) -> list[Run]:
    """Every run succeeded, with one result per policy and one set of training samples."""
    runs = study_runs(study_id)
    assert len(runs) == RUNS
    assert [run.status for run in runs] == ["succeeded"] * RUNS, [(r.status, r.error) for r in runs]
    with session_scope() as session:
        for run in runs:
            results = session.scalar(select(func.count()).where(RunResult.run_id == run.id))
            samples = session.execute(
                select(func.count(), func.sum(TrainingSampleSet.count)).where(
                    TrainingSampleSet.run_id == run.id
                )
            ).one()
            assert (results, *samples) == (len(POLICIES), 1, SAMPLES * 2)  # 2 device models
    return runs


def run_outcomes(runs: list[Run]) -> dict[uuid.UUID, str]:
    """How each run's message ended (every message waited for): the runs of a cell travel
    RUNS_PER_MESSAGE to a message (its task id `shared_task_id` of them), and those a message
    did not start in time were sent again, one message each (their task id the run's)."""
    ordered = sorted(runs, key=lambda run: (run.study_cell, run.study_repetition))
    groups = itertools.groupby(
        ordered, key=lambda run: (run.study_cell, run.study_repetition // RUNS_PER_MESSAGE)
    )
    outcomes: dict[uuid.UUID, str] = {}
    for _, grouped in groups:
        ids = [run.id for run in grouped]
        task_id = str(ids[0]) if len(ids) == 1 else shared_task_id(ids)
        message = AsyncResult(task_id, app=celery_app)
        wait_until(message.ready, 60, f"the message of runs {ids} handled")
        if len(ids) == 1:
            outcomes[ids[0]] = message.result["outcome"]
            continue
        for run in message.result["runs"]:
            outcomes[uuid.UUID(run["run_id"])] = run["outcome"]
        for run_id in message.result["sent_again"]:
            again = AsyncResult(run_id, app=celery_app)
            wait_until(again.ready, 60, f"run {run_id}, sent again, handled")
            outcomes[uuid.UUID(run_id)] = again.result["outcome"]
    return outcomes


def assert_aggregated_once_more_is_nothing(study_id: uuid.UUID, last_run: uuid.UUID) -> None:
    """A run of the finished study ending again (its message redelivered to a worker, the
    service called directly, the sweep) leaves the stored aggregation as it was."""
    before = study_row(study_id)
    assert before[0] == "succeeded" and before[1] is not None and before[3] is not None
    outcome = AsyncResult(str(last_run), app=celery_app)
    outcome.forget()
    CeleryQueue().enqueue_run(last_run, 5)
    wait_until(outcome.ready, 30, "the redelivered run to be handled")
    assert outcome.result == {"run_id": str(last_run), "outcome": "skipped"}
    studies.after_run_ended(last_run)
    assert studies.aggregate_due() == []
    assert study_row(study_id) == before


# --- The statistics, recomputed from the stored results with numpy and scipy -------------------


def close(actual: Any, expected: Any) -> bool:
    if expected is None or actual is None:
        return actual is expected
    return actual == pytest.approx(expected, rel=1e-9, abs=1e-12)


def t_interval(values: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(std, ci_low, ci_high) of the mean: Student t, 95 %, ddof 1; None below two values."""
    n = len(values)
    if n < 2:
        return None, None, None
    std = float(np.std(values, ddof=1))
    half = stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)
    mean = float(np.mean(values))
    return std, mean - half, mean + half


def p_values(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    if np.all(x == y):
        return 1.0, 1.0  # identical samples: documented as no evidence of a difference
    p_t = stats.ttest_rel(x, y).pvalue
    try:
        p_w = stats.wilcoxon(x, y).pvalue
    except ValueError:
        p_w = math.nan
    return tuple(float(p) if math.isfinite(p) else None for p in (p_t, p_w))  # type: ignore[return-value]


def assert_statistics_match(statistics: dict, study_id: uuid.UUID, body: dict) -> None:
    """Every cell's run counts, best policy, order, wins, every metric's n and mean, the rank
    metric's std and interval, and each policy's paired comparison with the best."""
    runs = study_runs(study_id)
    (rank_by,) = {run.rank_by for run in runs}
    assert statistics["rank_by"] == rank_by and statistics["confidence"] == 0.95
    results = stored_results(study_id)
    assert len(statistics["cells"]) == math.prod(len(v) for v in body["grid"].values())
    for index, cell in enumerate(statistics["cells"]):
        repetitions = sorted(r for (c, r) in results if c == index)
        assert cell["runs"]["total"] == body["repetitions"]
        assert cell["runs"]["succeeded"] == len(repetitions)
        rank = {
            policy: np.array([results[(index, r)][policy][rank_by] for r in repetitions])
            for policy in POLICIES
        }
        order = sorted(POLICIES, key=lambda p: (float(np.mean(rank[p])), p))
        best = order[0]
        assert cell["best"] == best
        assert [p["policy"] for p in cell["policies"]] == order
        lowest = np.min(np.stack([rank[p] for p in POLICIES]), axis=0)
        for summary in cell["policies"]:
            policy = summary["policy"]
            assert summary["wins"] == int(np.sum(rank[policy] == lowest))
            _check_metrics(summary["metrics"], results, index, repetitions, policy)
            std, low, high = t_interval(rank[policy])
            measured = summary["metrics"][rank_by]
            assert close(measured["std"], std) and close(measured["ci_low"], low)
            assert close(measured["ci_high"], high)
            if policy == best:
                assert summary["versus_best"] is None
                continue
            versus = summary["versus_best"]
            difference = rank[policy] - rank[best]
            _, diff_low, diff_high = t_interval(difference)
            p_t, p_w = p_values(rank[policy], rank[best])
            assert versus["metric"] == rank_by and versus["n"] == len(repetitions)
            assert close(versus["mean_difference"], float(np.mean(difference)))
            assert close(versus["ci_low"], diff_low) and close(versus["ci_high"], diff_high)
            assert close(versus["p_t"], p_t), (versus, p_t)
            assert close(versus["p_wilcoxon"], p_w), (versus, p_w)
    # Each cell is labelled with the grid values its runs ran with, and every combination of
    # the grid is one cell.
    ran_with = {run.study_cell: grid_values(run.spec, body["grid"]) for run in runs}
    combinations = [
        dict(zip(body["grid"], v, strict=True)) for v in itertools.product(*body["grid"].values())
    ]
    assert [cell["values"] for cell in statistics["cells"]] == [
        ran_with[index] for index in range(len(combinations))
    ]
    assert sorted(map(str, ran_with.values())) == sorted(map(str, combinations))


def grid_values(spec: dict, grid: dict) -> dict[str, Any]:
    """The values a run's stored spec has at the grid's dotted paths."""
    values = {}
    for key in grid:
        node: Any = spec
        for part in key.split("."):
            node = node[part]
        values[key] = node
    return values


def _check_metrics(summaries: dict, results: dict, cell: int, reps: list[int], policy: str) -> None:
    present = {m for m in METRICS for r in reps if results[(cell, r)][policy][m] is not None}
    assert present <= set(summaries)
    for metric, summary in summaries.items():
        values = [results[(cell, r)][policy][metric] for r in reps]
        values = [v for v in values if v is not None and math.isfinite(v)]
        assert summary["n"] == len(values), (policy, metric)
        assert close(summary["mean"], float(np.mean(values)) if values else None), (policy, metric)


# --- The tests ----------------------------------------------------------------------------------


def run_undisturbed(http: httpx.Client, worker: Worker) -> dict[str, Any]:
    """The study on `worker`, which nobody disturbs; its figures are kept for the other tests."""
    study_id = submit(http, STUDY)
    assert wait_ended(http, study_id)["status"] == "succeeded"
    runs = assert_every_run_succeeded_once(study_id)
    assert all(run.attempts == 1 for run in runs)
    last = max(runs, key=lambda run: run.finished_at)
    assert_aggregated_once_more_is_nothing(study_id, last.id)
    figures = {
        "study_id": study_id,
        "results": stored_results(study_id),
        "statistics": study_row(study_id)[3],
    }
    _undisturbed.update(figures)
    return figures


@pytest.fixture(scope="class")
def steady(env) -> Iterator[Worker]:
    """One worker nobody disturbs, for the tests of a class (a start costs 9-25 s on 2 loaded
    cores); each test has clean tables and queues (`http`)."""
    worker = Worker(concurrency=1, env=env)
    yield worker
    worker.stop()


class TestStudiesOnASteadyWorker:
    def test_a_study_runs_every_cell_and_repetition_once_and_aggregates_once(self, http, steady):
        figures = run_undisturbed(http, steady)
        study_id, statistics = figures["study_id"], figures["statistics"]
        assert len(figures["results"]) == RUNS
        assert_statistics_match(statistics, study_id, STUDY)
        served = http.get(f"/api/v1/studies/{study_id}/results")
        assert served.status_code == 200 and served.json()["statistics"] == statistics
        table = http.get(f"/api/v1/studies/{study_id}/results", params={"format": "csv"})
        header, *rows = table.text.splitlines()
        assert header.startswith("cell,cluster.gpus,workload.load,runs_total,")  # keys by name
        assert len(rows) == sum(
            len(p["metrics"]) for cell in statistics["cells"] for p in cell["policies"]
        )

    def test_cancel_stops_the_rest_of_a_study(self, http, steady):
        body = {
            "name": "cancelled",
            "base": LONGEST_RUN,
            "grid": {"cluster.gpus": [1, 2, 3]},
            "repetitions": 10,
        }
        study_id = submit(http, body)
        wait_until(lambda: succeeded(study_id) >= 3, 60, "three runs succeeded")
        response = http.post(f"/api/v1/studies/{study_id}/cancel")
        assert response.status_code == 200, response.text
        cancelled = response.json()
        done_before = cancelled["counts"].get("succeeded", 0)
        assert cancelled["status"] == "cancelled"
        assert cancelled["counts"] == {"succeeded": done_before, "cancelled": 30 - done_before}
        # Every message is still delivered; the worker skips the cancelled runs (or stops the
        # one it was executing at its next progress report).
        ended = list(run_outcomes(study_runs(study_id)).values())
        assert len(ended) == 30
        assert ended.count("succeeded") == done_before
        assert ended.count("cancelled") <= 1
        assert ended.count("skipped") + ended.count("cancelled") == 30 - done_before
        runs = study_runs(study_id)
        assert sum(run.status == "succeeded" for run in runs) == done_before
        assert sum(run.status == "cancelled" for run in runs) == 30 - done_before
        with session_scope() as session:
            stray = select(func.count()).where(
                RunResult.run_id.in_([r.id for r in runs if r.status != "succeeded"])
            )
            assert session.scalar(stray) == 0
        study = http.get(f"/api/v1/studies/{study_id}").json()
        assert study["status"] == "cancelled" and study["finished_at"] is not None
        assert http.get(f"/api/v1/studies/{study_id}/results").status_code == 409
        assert study_row(study_id)[3] is None


def freeze_mid_run(worker: Worker, study_id: uuid.UUID, spare: set[uuid.UUID]) -> uuid.UUID:
    """Stop (SIGSTOP) the worker's pool process while it executes a run of the study, and return
    that run: frozen mid-run, the process can neither finish it nor take another message, so a
    kill lands inside a run, never between two (where the Redis transport has popped the next
    message but not yet recorded it as unacknowledged: a whole worker killed there loses it).
    `spare`: runs left "running" by an earlier kill, not executing anywhere."""
    (pool_process,) = worker.pool_pids()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = [
            r.id for r in study_runs(study_id) if r.status == "running" and r.id not in spare
        ]
        if running:
            os.kill(pool_process, signal.SIGSTOP)
            # A commit already sent lands meanwhile, however long PostgreSQL takes to get to it.
            wait_until(lambda: database_quiet(pool_process), 30, "its statements answered", 0.01)
            (run,) = [r for r in study_runs(study_id) if r.id == running[0]]
            if run.status == "running":
                return run.id
            os.kill(pool_process, signal.SIGCONT)
        time.sleep(0.005)
    raise TimeoutError("no run of the study caught executing")


def database_quiet(pid: int) -> bool:
    """Every statement process `pid` (stopped) sent to PostgreSQL was read and answered: no byte
    left unread on the server's side of its connections, no backend of them active."""
    pg_port = make_url(get_settings().require_database_url()).port
    ports = {
        c.laddr.port
        for c in psutil.Process(pid).net_connections("tcp")
        if c.raddr and c.raddr.port == pg_port
    }
    with session_scope() as session:
        active = session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE client_port = ANY(:ports) AND state = 'active'"
            ),
            {"ports": sorted(ports)},
        )
    return active == 0 and _unread_by_server(pg_port, ports) == 0


def _unread_by_server(server_port: int, client_ports: set[int]) -> int:
    """Bytes waiting in the receive queues of the server's ends of these TCP connections (Linux:
    /proc/net/tcp lists `local remote state tx_queue:rx_queue`, ports in hex)."""
    unread = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if local == server_port and remote in client_ports:
            unread += int(fields[4].split(":")[1], 16)
    return unread


def test_workers_killed_mid_study_change_nothing(http, env):
    if not _undisturbed:  # run on its own: the undisturbed study first, on a worker of its own
        alone = Worker(concurrency=1, env=env)
        try:
            run_undisturbed(http, alone)
        finally:
            alone.stop()
    undisturbed = _undisturbed
    # The first worker never scans for unacknowledged messages (that is the second's job), so
    # it cannot die holding the transport's restore lock (kept 300 s after a crash).
    first = Worker(concurrency=1, env={**env, "HMS_UNACKED_RESTORE_INTERVAL_S": "3600"})
    second = None
    try:
        study_id = submit(http, STUDY)
        wait_until(lambda: succeeded(study_id) >= 2, 60, "two runs succeeded", every_s=0.02)
        in_pool_process = freeze_mid_run(first, study_id, spare=set())
        os.kill(first.pool_pids()[0], signal.SIGKILL)  # its message goes back to the queue now
        wait_until(lambda: succeeded(study_id) >= 10, 60, "ten runs succeeded", every_s=0.02)
        in_worker = freeze_mid_run(first, study_id, spare={in_pool_process})
        first.kill()  # the whole worker: its message comes back after the visibility timeout
        second = Worker(concurrency=1, env=env)
        assert wait_ended(http, study_id)["status"] == "succeeded"
        runs = assert_every_run_succeeded_once(study_id)
        attempts = {run.id: run.attempts for run in runs}
        assert attempts[in_pool_process] == attempts[in_worker] == 2
        assert sum(attempts.values()) == RUNS + 2
        wait_until(broker_idle, 30, "every message handled")
        finished = study_row(study_id)
        assert_aggregated_once_more_is_nothing(study_id, in_worker)
    finally:
        first.kill()
        if second is not None:
            second.stop()
    assert stored_results(study_id) == undisturbed["results"]  # bit-identical
    assert finished[3] == undisturbed["statistics"]
    assert_statistics_match(finished[3], study_id, STUDY)


def succeeded(study_id: uuid.UUID) -> int:
    return sum(run.status == "succeeded" for run in study_runs(study_id))


def test_a_worker_killed_while_aggregating_leaves_it_to_the_sweep(http, servers):
    """The last run's worker blocks on the study's row lock (held here) inside the aggregation,
    is killed there, and its transaction dies with it; the recovery sweep aggregates, once."""
    body = {
        "name": "one long run last",
        "base": {**STUDY["base"], "workload": {"kind": "synthetic", "num_tasks": 200}},
        "grid": {"workload.num_tasks": [200, 300_000]},  # the second cell's runs take ~1 s
        "repetitions": 2,
    }
    # Default time limits (the worker waits on the lock as long as the test holds it) and
    # visibility timeout (the last run's message is not redelivered during the test): only the
    # sweep can finish the study. It aggregates a study untouched for 1 s.
    slow_redelivery = {"HMS_SAMPLES_PER_RUN": str(SAMPLES), "HMS_REQUEUE_UNSENT_AFTER_S": "1"}
    worker = Worker(concurrency=1, env=slow_redelivery)
    locker = create_engine(servers.database_url).connect()
    try:
        study_id = submit(http, body)

        def last_run_claimed() -> bool:
            runs = study_runs(study_id)
            return [r.status for r in runs].count("succeeded") == 3 and running_run(study_id)

        wait_until(last_run_claimed, 60, "the last run claimed", every_s=0.02)
        lock = locker.begin()
        locker.execute(text("SELECT id FROM studies WHERE id = :id FOR UPDATE"), {"id": study_id})

        def aggregation_blocked() -> bool:
            # Not on the locking connection: pg_stat_activity is a snapshot per transaction.
            with session_scope() as session:
                waiting = session.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%FROM studies%FOR UPDATE%'"
                    )
                )
            return bool(waiting) and all(r.status == "succeeded" for r in study_runs(study_id))

        wait_until(aggregation_blocked, 60, "the aggregation waiting for the study's row")
        worker.kill()  # mid-aggregation: it holds an open transaction that locked nothing yet
        lock.rollback()
        assert study_row(study_id)[0] == "running" and study_row(study_id)[3] is None
        worker = Worker(concurrency=1, env=slow_redelivery)
        reports = []

        def swept() -> bool:
            report = celery_app.send_task("hms.sweep", queue="simulations").get(timeout=30)
            reports.append(report)
            return str(study_id) in report["studies"]

        wait_until(swept, 60, "the sweep to aggregate the study", every_s=0.5)
        assert [str(study_id) in r["studies"] for r in reports].count(True) == 1
        assert all(r["runs"] == [] for r in reports)
        finished = study_row(study_id)
        assert finished[0] == "succeeded"
        again = celery_app.send_task("hms.sweep", queue="simulations").get(timeout=30)
        assert again["studies"] == []
        last = max(study_runs(study_id), key=lambda run: run.finished_at)
        assert_aggregated_once_more_is_nothing(study_id, last.id)
        assert study_row(study_id) == finished
        assert_statistics_match(finished[3], study_id, body)
    finally:
        locker.close()
        locker.engine.dispose()
        worker.stop()
