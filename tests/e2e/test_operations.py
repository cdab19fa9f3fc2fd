"""Operating it, with real processes: a worker with 2 pool processes exporting its metrics
(prometheus-client's multiprocess mode) and writing JSON log lines, and the API under uvicorn
writing JSON too. A request id sent to the API shows up in the worker's log line for that run;
the Grafana dashboard queries only metrics these processes expose."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import EXAMPLE_SPEC, TEAM_A_KEY, Servers, empty_queues, empty_tables
from tests.processes import PROJECT_ROOT, Api, Worker, free_port, wait_until

RUNS = 6
TOKEN = "e2e-scraper-token"
SMALL_SPEC = {**EXAMPLE_SPEC, "workload": {"kind": "synthetic", "num_tasks": 500, "seed": 1}}
#: PromQL words that are not metric names.
_PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "topk", "bottomk", "abs", "clamp_min", "clamp_max", "time", "vector",
}  # fmt: skip


@pytest.fixture(scope="module")
def observed(servers: Servers, tmp_path_factory) -> Iterator[dict[str, Any]]:
    metrics_dir = tmp_path_factory.mktemp("worker-metrics")
    port = free_port()
    json_logs = {"HMS_LOG_FORMAT": "json", "HMS_METRICS_TOKEN": TOKEN}
    worker = Worker(
        concurrency=2,
        env={
            **json_logs,
            "HMS_WORKER_METRICS_PORT": str(port),
            "HMS_WORKER_METRICS_DIR": str(metrics_dir),
        },
    )
    api = Api(env=json_logs)
    try:
        yield {"worker": worker, "api": api, "port": port, "dir": metrics_dir}
    finally:
        api.stop()
        worker.stop()


@pytest.fixture(scope="module")
def finished_runs(observed, clean_state_module) -> list[tuple[str, str]]:
    """RUNS runs submitted with known request ids, all succeeded: (request id, run id)."""
    api: Api = observed["api"]
    sent = []
    with httpx.Client(base_url=api.url, headers={"X-API-Key": TEAM_A_KEY}, timeout=30) as http:
        for number in range(RUNS):
            request_id = f"e2e-request-{number}"
            response = http.post(
                "/api/v1/runs", json=SMALL_SPEC, headers={"X-Request-ID": request_id}
            )
            assert response.status_code == 202, response.text
            assert response.headers["X-Request-ID"] == request_id
            sent.append((request_id, response.json()["id"]))

        def all_succeeded() -> bool:
            statuses = [http.get(f"/api/v1/runs/{run_id}").json()["status"] for _, run_id in sent]
            assert "failed" not in statuses, statuses
            return statuses == ["succeeded"] * RUNS

        wait_until(all_succeeded, 180, f"{RUNS} runs succeeded", every_s=0.3)
    return sent


@pytest.fixture(scope="module")
def clean_state_module(servers: Servers) -> None:
    """Empty tables and queues once for the module (the runs here are counted)."""
    empty_tables()
    empty_queues(servers.redis_url)


def scrape(url: str, **headers: str) -> dict[tuple[str, frozenset], float]:
    response = httpx.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def worker_samples(observed) -> dict[tuple[str, frozenset], float]:
    return scrape(f"http://127.0.0.1:{observed['port']}/metrics")


def json_lines(log: str) -> list[dict[str, Any]]:
    lines = []
    for line in log.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


def test_worker_metrics_add_up_over_its_pool_processes(observed, finished_runs):
    def total(samples: dict, name: str) -> float:
        return sum(value for (sample, _), value in samples.items() if sample == name)

    samples: dict = {}

    def counted() -> bool:  # the last run's postrun may follow its commit by a moment
        nonlocal samples
        samples = worker_samples(observed)
        return total(samples, "hms_worker_run_duration_seconds_count") >= RUNS

    wait_until(counted, 30, f"{RUNS} run durations exported")
    assert total(samples, "hms_worker_run_duration_seconds_count") == RUNS
    shape = frozenset({"policies": "3", "tasks": "1k", "outcome": "succeeded"}.items())
    assert samples[("hms_worker_run_duration_seconds_count", shape)] == RUNS
    assert samples[("hms_worker_run_duration_seconds_sum", shape)] > 0
    assert samples[("hms_worker_runs_total", frozenset({"outcome": "succeeded"}.items()))] == RUNS
    run_task = frozenset({"task": "hms.run_simulation"}.items())
    assert samples[("hms_worker_task_redeliveries_total", run_task)] == 0
    assert samples[("hms_worker_task_retries_total", run_task)] == 0
    assert samples[("hms_worker_task_failures_total", run_task)] == 0
    # The observations were made in the pool processes, not in the exporting main process.
    worker: Worker = observed["worker"]
    writers = {int(m) for m in re.findall(r"histogram_(\d+)\.db", " ".join(
        path.name for path in Path(observed["dir"]).iterdir()))}  # fmt: skip
    assert writers and worker.pid not in writers


def test_the_request_id_reaches_the_workers_log_line_for_its_run(observed, finished_runs):
    worker_lines = json_lines(observed["worker"].log())
    assert worker_lines, observed["worker"].log()[-2000:]
    for request_id, run_id in finished_runs:
        lines = [line for line in worker_lines if line.get("run_id") == run_id]
        assert lines, f"no worker log line names run {run_id}"
        assert all(line["request_id"] == request_id for line in lines), lines
        succeeded = [line for line in lines if "succeeded" in line["message"]]
        assert succeeded, lines
        line = succeeded[0]
        assert line["level"] == "INFO" and line["logger"] and line["time"]
        assert line["task_id"] == run_id and line["task"] == "hms.run_simulation"
        assert line["attempt"] == 1


def test_the_api_logs_json_access_lines_with_request_id_and_tenant(observed, finished_runs):
    request_id, _ = finished_runs[0]
    access = [
        line
        for line in json_lines(observed["api"].log())
        if line.get("logger") == "api.access" and line.get("request_id") == request_id
    ]
    assert len(access) == 1, access
    assert access[0]["route"] == "/api/v1/runs" and access[0]["status"] == 202
    assert access[0]["tenant"] == "team-a" and access[0]["level"] == "INFO"


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: label matchers, grouping clauses, ranges
    and strings removed, what is left that is not a function or keyword."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return {word for word in words if word not in _PROMQL_WORDS}


def test_metric_names_are_read_from_promql():
    expr = 'histogram_quantile(0.95, sum by (le, route) (rate(x_bucket{a="b"}[5m]))) / y'
    assert metric_names(expr) == {"x_bucket", "y"}


def test_compose_mounts_the_ops_files_and_logs_json():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for service in ("prometheus", "grafana"):
        for volume in services[service]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (PROJECT_ROOT / source).exists(), source
    assert services["api"]["environment"]["HMS_LOG_FORMAT"] == "json"
    assert services["worker"]["environment"]["HMS_WORKER_METRICS_PORT"] == "9808"


def test_the_dashboard_queries_only_metrics_we_expose(observed, finished_runs):
    ops = PROJECT_ROOT / "ops"
    prometheus = yaml.safe_load((ops / "prometheus.yml").read_text())
    assert {job["job_name"] for job in prometheus["scrape_configs"]} >= {"hms-api", "hms-worker"}
    for provisioning in (ops / "grafana" / "provisioning").rglob("*.yml"):
        assert yaml.safe_load(provisioning.read_text())["apiVersion"] == 1
    dashboards = list((ops / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    queried = {
        name
        for path in dashboards
        for panel in json.loads(path.read_text())["panels"]
        for target in panel["targets"]
        for name in metric_names(target["expr"])
    }
    api = f"{observed['api'].url}/metrics"
    exposed = {name for name, _ in scrape(api, Authorization=f"Bearer {TOKEN}")}
    exposed |= {name for name, _ in worker_samples(observed)}
    assert queried and queried <= exposed, sorted(queried - exposed)
