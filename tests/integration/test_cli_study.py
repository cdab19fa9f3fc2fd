"""`hms study` against the API under uvicorn, the real database and broker. No worker runs: while
`--wait` follows the study's event stream, a thread of the test executes its runs (or cancels
it) through the services."""

import csv
import io
import json
import threading
import uuid
from collections.abc import Callable

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from app.cli.main import main
from app.db.models import Run, RunStatus, Study, StudyStatus
from app.db.session import session_scope
from app.services import runs, studies
from tests.conftest import ADMIN, TEST_API_KEY
from tests.fakes import RecordingQueue
from tests.processes import wait_until

STUDY = {
    "name": "gpus",
    "base": {
        "workload": {"kind": "synthetic", "num_tasks": 40},
        "cluster": {"cpus": 2, "gpus": 1},
        "policies": ["greedy", "oracle"],
    },
    "grid": {"cluster.gpus": [1, 2]},
    "repetitions": 2,
}


@pytest.fixture
def hms(api, tmp_path):
    """`hms study ...` against the API, with the study's spec file written for `submit`."""
    spec = tmp_path / "study.json"
    spec.write_text(json.dumps(STUDY))

    def invoke(*args: str) -> Result:
        flags = ["--api", api.url, "--key", TEST_API_KEY]
        argv = ["study", *(str(spec) if a == "SPEC" else a for a in args), *flags]
        return CliRunner().invoke(main, argv, catch_exceptions=False)

    return invoke


def queued_runs(study_id: str) -> list:
    with session_scope() as session:
        return list(
            session.scalars(
                select(Run.id)
                .where(Run.study_id == study_id, Run.status == RunStatus.QUEUED)
                .order_by(Run.study_cell, Run.study_repetition)
            )
        )


def run_all(study_id: str) -> None:
    """What the workers do: the fan-out creates the runs, then each is executed."""
    studies.fan_out_study(uuid.UUID(study_id), RecordingQueue())
    for run_id in queued_runs(study_id):
        runs.execute_run(run_id)


def beside(action: Callable[[str], None]) -> threading.Thread:
    """A thread that waits for the study being submitted, then does `action` with its id."""

    def act() -> None:
        wait_until(lambda: bool(running_studies()), 30, "the study submitted")
        action(running_studies()[0])

    thread = threading.Thread(target=act)
    thread.start()
    return thread


def running_studies() -> list[str]:
    with session_scope() as session:
        query = select(Study.id).where(Study.status == StudyStatus.RUNNING)
        return [str(study_id) for study_id in session.scalars(query)]


def test_submit_wait_follows_the_study_until_every_run_ended_then_prints_the_tables(hms):
    executing = beside(run_all)
    result = hms("submit", "SPEC", "--wait")
    executing.join()
    assert result.exit_code == 0, result.output
    study_id, *table = result.stdout.splitlines()
    text = "\n".join(table)
    assert text.startswith("cell 0  cluster.gpus=1\nruns: 2 succeeded, 0 failed, 0 cancelled")
    assert "cell 1  cluster.gpus=2" in text
    assert [line.split()[0] for line in table if line.startswith(("oracle", "greedy"))] == [
        "oracle",
        "greedy",
    ] * 2
    assert result.stderr == ""  # not a terminal: no progress bar
    assert hms("results", study_id).stdout.splitlines() == table


def test_submit_wait_json_prints_only_the_results_document(hms):
    executing = beside(run_all)
    result = hms("submit", "SPEC", "--wait", "--json")
    executing.join()
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document == json.loads(hms("results", document["study_id"], "--json").stdout)
    assert document["status"] == "succeeded"


def test_submit_wait_exits_1_when_the_study_is_cancelled(hms):
    cancelling = beside(cancelled)
    result = hms("submit", "SPEC", "--wait", "--json")
    cancelling.join()
    assert result.exit_code == 1
    study = json.loads(result.stdout)
    assert (study["status"], study["counts"]) == ("cancelled", {"cancelled": 4})
    assert "was cancelled" in result.stderr


def cancelled(study_id: str) -> None:
    """Cancel the study as another client would: through the service, not a second CliRunner
    (CliRunner swaps sys.stdout for the whole process, so two invocations at once in two
    threads capture each other's output)."""
    studies.cancel_study(ADMIN, uuid.UUID(study_id))


def test_results_exit_1_with_the_api_message_until_the_study_ended(hms):
    study_id = hms("submit", "SPEC", "--idempotency-key", "k1").stdout.strip()
    assert hms("submit", "SPEC", "--idempotency-key", "k1").stdout.strip() == study_id
    early = hms("results", study_id)
    assert early.exit_code == 1 and early.stdout == ""
    assert early.stderr.startswith(f"Error: study {study_id} has no statistics yet: it is running")
    assert early.stderr.endswith(" (HTTP 409)\n")
    assert "{" not in early.stderr  # the message, not the JSON body
    run_all(study_id)
    document = json.loads(hms("results", study_id, "--json").stdout)
    assert document["status"] == "succeeded"
    assert [cell["best"] for cell in document["statistics"]["cells"]] == ["oracle", "oracle"]
    rows = list(csv.DictReader(io.StringIO(hms("results", study_id, "--csv").stdout)))
    assert {(row["cluster.gpus"], row["policy"]) for row in rows} == {
        (gpus, policy) for gpus in ("1", "2") for policy in ("greedy", "oracle")
    }


def test_status_list_and_cancel_show_the_api_documents(hms, api):
    submitted = json.loads(hms("submit", "SPEC", "--json").stdout)
    assert (submitted["total_runs"], submitted["counts"]) == (4, {"queued": 4})
    status = json.loads(hms("status", submitted["id"], "--json").stdout)
    auth = {"X-API-Key": TEST_API_KEY}
    assert status == httpx.get(f"{api.url}/api/v1/studies/{submitted['id']}", headers=auth).json()
    running = json.loads(hms("list", "--status", "running", "--json").stdout)
    assert [s["id"] for s in running["items"]] == [submitted["id"]]
    cancelled = json.loads(hms("cancel", submitted["id"], "--json").stdout)
    assert cancelled["status"] == "cancelled"
    assert json.loads(hms("list", "--status", "running", "--json").stdout)["total"] == 0
    again = hms("cancel", submitted["id"])
    assert again.exit_code == 1
    assert again.stderr == (
        f"Error: study {submitted['id']} is already cancelled and cannot be cancelled (HTTP 409)\n"
    )


def test_delete_says_the_runs_go_in_the_background_and_a_second_delete_is_not_found(hms):
    study_id = hms("submit", "SPEC").stdout.strip()
    assert hms("cancel", study_id).exit_code == 0
    deleted = hms("delete", study_id)
    assert deleted.stdout == (
        f"deleted study {study_id}: study deleted; its 4 runs are being removed in the background\n"
    )
    again = hms("delete", study_id)
    assert again.exit_code == 1 and "(HTTP 404)" in again.stderr


def test_status_and_list_print_tables(hms):
    study_id = hms("submit", "SPEC").stdout.strip()
    status = hms("status", study_id).stdout.splitlines()
    assert status[:4] == [
        f"id              {study_id}",
        "name            gpus",
        "status          running",
        "runs ended      0/4 (0%)",
    ]
    assert "runs by status  queued 4" in status
    header, _rule, row, footer = hms("list").stdout.splitlines()
    assert header.split() == ["id", "name", "status", "runs", "ended", "created"]
    assert row.split()[:4] == [study_id, "gpus", "running", "0/4"]
    assert footer == "1-1 of 1 studies"


def test_a_study_is_named_by_a_prefix_of_its_id_and_cancel_prints_its_table(hms):
    study_id = hms("submit", "SPEC").stdout.strip()
    status = hms("status", study_id[:6], "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["id"] == study_id
    cancelled = hms("cancel", study_id[:8]).stdout.splitlines()
    assert cancelled[:3] == [
        f"id              {study_id}",
        "name            gpus",
        "status          cancelled",
    ]
    unknown = "0000" if not study_id.startswith("0000") else "ffff"
    assert hms("status", unknown).stderr == f"Error: no study starts with {unknown} (HTTP 404)\n"
