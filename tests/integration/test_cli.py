"""`hms` run and model commands against the API under uvicorn, the real database and broker: each
prints a table by default and exactly the API's JSON with `--json`; `--wait` follows the event
stream, reconnecting with Last-Event-ID. No worker runs: the tests execute runs and retrains
through the services, in a thread beside the command when it waits."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable

import httpx
import pytest
from click.testing import CliRunner, Result

from app.cli.follow import follow
from app.cli.main import main
from app.db.models import Run
from app.db.session import session_scope
from app.errors import RunNotFound
from app.runspec import PERF_MODEL_NAMES
from app.services import lifecycle, runs, training
from tests.conftest import ADMIN, EXAMPLE_SPEC, TEAM_A_KEY, TEAM_B_KEY, TEST_API_KEY
from tests.fakes import RecordingQueue
from tests.processes import wait_until

AUTH = {"X-API-Key": TEST_API_KEY}
SPEC = {**EXAMPLE_SPEC, "workload": {"kind": "synthetic", "num_tasks": 300, "seed": 7}}


@pytest.fixture
def http(api):
    with httpx.Client(base_url=api.url, headers=AUTH, timeout=30) as client:
        yield client


@pytest.fixture
def hms(api, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))

    def invoke(*args: str, key: str = TEST_API_KEY) -> Result:
        argv = [str(spec) if a == "SPEC" else a for a in args]
        flags = ["--api", api.url, "--key", key]
        return CliRunner().invoke(main, [*argv, *flags], catch_exceptions=False)

    return invoke


def succeeded_run(http) -> str:
    run_id = http.post("/api/v1/runs", json=SPEC).json()["id"]
    runs.execute_run(uuid.UUID(run_id))
    return run_id


def test_results_prints_the_leaderboard_and_json_the_apis_document(hms, http):
    run_id = succeeded_run(http)
    document = http.get(f"/api/v1/runs/{run_id}/results").json()
    assert json.loads(hms("results", run_id, "--json").stdout) == document
    lines = hms("results", run_id).stdout.splitlines()
    header = lines[0].split()
    assert header[:3] == ["#", "policy", "mean"]  # the rank metric leads: mean flow time
    rows = [line.split() for line in lines[2 : 2 + len(document["results"])]]
    assert [(row[0], row[1]) for row in rows] == [
        (str(r["rank"]), r["policy"]) for r in document["results"]
    ]
    best = document["results"][0]
    assert rows[0][2] == f"{best['mean_flow_time']:.4f}"
    assert rows[0][3] == f"{best['makespan']:.3f}"
    assert f"ranked by {document['rank_by']} (lower is better)" in lines


def test_status_and_runs_print_tables_and_json_the_apis_documents(hms, http):
    run_id = succeeded_run(http)
    run = http.get(f"/api/v1/runs/{run_id}").json()
    assert json.loads(hms("status", run_id, "--json").stdout) == run
    status = hms("status", run_id).stdout.splitlines()
    assert status[:5] == [
        f"id             {run_id}",
        "status         succeeded",
        "progress       100%",
        "phase",  # none once it succeeded
        "attempts       1",
    ]
    assert "policies       round_robin, random, greedy" in status
    page = http.get("/api/v1/runs", params={"limit": 20, "offset": 0}).json()
    assert json.loads(hms("runs", "--json").stdout) == page
    header, _, row, footer = hms("runs").stdout.splitlines()
    assert header.split() == ["id", "status", "progress", "priority", "policies", "created"]
    assert row.split()[:5] == [run_id, "succeeded", "100%", "5", "round_robin,random,greedy"]
    assert footer == "1-1 of 1 runs"


def test_submit_wait_follows_the_run_then_prints_its_id_and_leaderboard(hms, http):
    executing = threading.Thread(target=execute_when_submitted, args=(http,))
    executing.start()
    result = hms("submit", "SPEC", "--wait")
    executing.join()
    assert result.exit_code == 0, result.output
    run_id, *table = result.stdout.splitlines()
    assert http.get(f"/api/v1/runs/{run_id}").json()["status"] == "succeeded"
    policies = [line.split()[1] for line in table[2:5]]
    assert sorted(policies) == ["greedy", "random", "round_robin"]
    assert result.stderr == ""  # not a terminal: no bar


def test_submit_wait_json_prints_only_the_ended_run(hms, http):
    executing = threading.Thread(target=execute_when_submitted, args=(http,))
    executing.start()
    result = hms("submit", "SPEC", "--wait", "--json")
    executing.join()
    run = json.loads(result.stdout)
    assert run == http.get(f"/api/v1/runs/{run['id']}").json()
    assert run["status"] == "succeeded"


def execute_when_submitted(http) -> None:
    def submitted() -> bool:
        return http.get("/api/v1/runs").json()["total"] > 0

    wait_until(submitted, 30, "a run submitted")
    runs.execute_run(uuid.UUID(http.get("/api/v1/runs").json()["items"][0]["id"]))


def test_following_a_stream_resumes_after_the_server_closes_it_with_nothing_seen_twice(http):
    """The server closes each stream after 0.3 s (timeout_s); `follow` reconnects with
    Last-Event-ID until the run ended, while the test moves the run along."""
    run_id = http.post("/api/v1/runs", json=SPEC).json()["id"]
    shown: list[dict] = []
    failed: list[BaseException] = []

    def advance() -> None:
        """Each change once the state before it was shown: the i-th change after i states (not
        after one more than were shown when it began waiting: the state a change makes may be
        shown before that count is taken, and the next change would wait for nothing). A
        failure here cancels the run, so that `follow` ends, and fails the test after."""
        changes = (claim, lambda: set_progress(0.5), lambda: runs.cancel_run(*cancel))
        try:
            for shown_before, change in enumerate(changes, start=1):
                wait_until(more_than(shown_before - 1), 30, f"state {shown_before} shown")
                change()
        except BaseException as exc:
            failed.append(exc)
            with contextlib.suppress(Exception):  # already ended: `follow` ends anyway
                runs.cancel_run(*cancel)

    def more_than(count: int) -> Callable[[], bool]:
        return lambda: len(shown) > count

    def claim() -> None:
        lifecycle.claim(Run, uuid.UUID(run_id), RunNotFound)

    def set_progress(progress: float) -> None:
        reporter = lifecycle.ProgressReporter(Run, uuid.UUID(run_id), None)
        reporter.last = float("-inf")
        reporter(progress, "greedy")

    cancel = (ADMIN, uuid.UUID(run_id), RecordingQueue())
    mover = threading.Thread(target=advance)
    mover.start()
    last = follow(
        http,
        f"/api/v1/runs/{run_id}/events",
        lambda state: state["status"] in {"succeeded", "failed", "cancelled"},
        shown.append,
        params={"timeout_s": 0.3},
    )
    mover.join()
    assert not failed, failed
    assert [(s["status"], s["progress"]) for s in shown] == [
        ("queued", 0.0),
        ("running", 0.0),
        ("running", 0.5),
        ("cancelled", 0.5),
    ]
    assert last == shown[-1]


def test_policies_prints_every_policy_the_api_lists(hms, http):
    documents = http.get("/api/v1/policies").json()
    assert json.loads(hms("policies", "--json").stdout) == documents
    shown = hms("policies").stdout.splitlines()
    split = shown.index("Kernel performance models (perf_model):")
    names = [line.split()[0] for line in shown[: split - 1] if not line.startswith(" ")]
    assert names == [p["name"] for p in documents]
    assert {"sufferage", "lookahead", "dmda", "heteroprio"} <= set(names)
    models = http.get("/api/v1/policies/perf-models").json()
    assert json.loads(hms("policies", "--models", "--json").stdout) == models
    shown_models = [line.split()[0] for line in shown[split + 1 :] if not line.startswith(" ")]
    assert shown_models == [m["name"] for m in models] == list(PERF_MODEL_NAMES)


def test_models_and_retrain_print_tables_and_json_the_apis_documents(hms, http):
    assert json.loads(hms("models", "--json").stdout) == http.get("/api/v1/models").json() == []
    assert hms("models").stdout.splitlines()[0].split()[:3] == ["version", "active", "status"]

    def execute_the_job() -> None:
        wait_until(lambda: http.get("/api/v1/models/retrains").json()["total"] > 0, 30, "a job")
        (job,) = http.get("/api/v1/models/retrains").json()["items"]
        training.execute_retrain(uuid.UUID(job["id"]))

    executing = threading.Thread(target=execute_the_job)
    executing.start()
    waited = hms("retrain", "--wait", "--json")
    executing.join()
    job = json.loads(waited.stdout)
    assert job == http.get(f"/api/v1/models/retrains/{job['id']}").json()
    assert job["status"] == "skipped" and job["message"].startswith("skipped: 0 samples")
    assert http.get(f"/api/v1/models/retrains/{job['id'][:8]}").json() == job
    table = hms("retrain").stdout.strip()
    assert uuid.UUID(table)  # without --wait: the job's id


#: Two run ids that share their first 8 hex digits (and 31 of 32).
TWINS = ("c885b016-0000-4000-8000-000000000001", "c885b016-0000-4000-8000-000000000002")


def insert_run(run_id: str, tenant: str = "tests") -> None:
    """A queued run with a chosen id: uuid4 would not give two that share a prefix."""
    with session_scope() as session:
        session.add(
            Run(id=uuid.UUID(run_id), spec=SPEC, priority=5, tenant=tenant, request_digest="")
        )


def test_a_unique_prefix_names_the_run_in_every_run_command(hms, http):
    insert_run(TWINS[0])
    status = hms("status", "c885")
    assert status.exit_code == 0, status.output
    assert status.stdout.splitlines()[:2] == [f"id             {TWINS[0]}", "status         queued"]
    assert json.loads(hms("status", "C885B016-00", "--json").stdout)["id"] == TWINS[0]
    assert http.get("/api/v1/runs/c885b016/events", params={"timeout_s": 0}).status_code == 200
    cancelled = hms("cancel", "c885b0")
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.splitlines()[:2] == [
        f"id             {TWINS[0]}",
        "status         cancelled",
    ]
    assert hms("delete", "c885b016").exit_code == 0
    assert http.get(f"/api/v1/runs/{TWINS[0]}").status_code == 404


def test_an_ambiguous_prefix_names_how_many_runs_and_which_start_with_it(hms):
    for run_id in TWINS:
        insert_run(run_id)
    ambiguous = hms("status", "c885b016")
    assert ambiguous.exit_code == 1 and ambiguous.stdout == ""
    assert ambiguous.stderr == (
        f"Error: run_id: ambiguous: 2 runs start with c885b016 ({TWINS[0]}, {TWINS[1]}) "
        "(HTTP 422)\n"
    )
    assert hms("results", "c885b016-0000-4000-8000-00000000000").exit_code == 1  # 31 digits
    assert json.loads(hms("status", TWINS[1], "--json").stdout)["id"] == TWINS[1]


def test_an_unknown_or_too_short_prefix_is_a_sentence(hms):
    insert_run(TWINS[0])
    unknown = hms("status", "abcd")
    assert (unknown.exit_code, unknown.stderr) == (1, "Error: no run starts with abcd (HTTP 404)\n")
    for text in ("c88", "c8-8", "c885x"):
        short = hms("cancel", text)
        assert short.exit_code == 1
        assert short.stderr == (
            f"Error: run_id: {text!r} is not a run id: give the id or its first 4 or more hex "
            "digits (HTTP 422)\n"
        )


def test_a_prefix_finds_only_the_callers_own_runs(hms):
    insert_run(TWINS[0], tenant="team-a")
    insert_run(TWINS[1], tenant="tests")
    mine = hms("status", "c885b016", "--json", key=TEAM_A_KEY)
    assert mine.exit_code == 0, mine.output
    assert json.loads(mine.stdout)["id"] == TWINS[0]  # the other tenant's twin does not count
    theirs = hms("status", "c885b016", key=TEAM_B_KEY)
    assert theirs.stderr == "Error: no run starts with c885b016 (HTTP 404)\n"
    assert "ambiguous: 2 runs" in hms("status", "c885b016").stderr  # an admin sees both
