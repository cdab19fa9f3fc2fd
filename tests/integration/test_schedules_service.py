"""Per-task schedules recomputed on read (app/services/schedules.py), against the real database:
bit for bit the schedules the run computed; refused, naming why, when the simulator no longer
reproduces them; stored ones (learned's, and those of runs recorded before) read as stored."""

import uuid
from dataclasses import replace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.deps import SESSION_COOKIE
from api.main import app
from app.db import schedules as schedule_store
from app.db.models import RunResult, RunSchedule
from app.db.session import session_scope
from app.errors import ScheduleNotFound, ScheduleNotReproducible
from app.runspec import RunSpec
from app.services import runs, schedules, simulation
from app.sim.policies import POLICY_NAMES
from app.sim.predicted import MODEL_POLICIES
from app.sim.schedule import ARRAYS
from tests.conftest import ADMIN, EXAMPLE_SPEC, TEST_API_KEY
from tests.fakes import RecordingQueue
from tests.unit.sim.conftest import sha256_digest

SMALL = {**EXAMPLE_SPEC, "workload": {"kind": "synthetic", "num_tasks": 300, "seed": 2}}


@pytest.fixture(autouse=True)
def no_cached_schedules(servers):
    """Each test recomputes: nothing cached from another test's run or simulator."""
    schedules._recomputed.cache_clear()
    yield
    schedules._recomputed.cache_clear()


def executed(spec: dict) -> tuple[uuid.UUID, dict]:
    """A run of `spec` executed here, and the schedules its simulation computed, by policy."""
    computed = {}

    def recording(*args, **kwargs):
        result = simulation.simulate_spec(*args, **kwargs)
        computed.update({outcome.policy: outcome.schedule for outcome in result.outcomes})
        return result

    run_id = runs.submit_run(ADMIN, RunSpec.model_validate(spec), RecordingQueue()).run.id
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runs, "simulate_spec", recording)
        assert runs.execute_run(run_id) == runs.ExecutionOutcome.SUCCEEDED
    return run_id, computed


def stored_rows(run_id: uuid.UUID) -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(RunSchedule.policy).where(RunSchedule.run_id == run_id)))


def test_every_policys_schedule_read_back_is_bit_identical_to_the_one_its_run_computed():
    policies = [name for name in POLICY_NAMES if name != "learned"]  # its model takes a minute
    run_id, computed = executed({**SMALL, "policies": policies})
    # stored, not recomputed: the runtime schedulers' (they decided with the tenant's fitted
    # kernel model, the default `history`); every other policy's is recomputed on read
    assert sorted(stored_rows(run_id)) == sorted(MODEL_POLICIES)
    assert schedules.available_schedules(ADMIN, run_id) == sorted(policies)
    for policy, original in computed.items():
        devices, schedule = schedules.get_schedule(ADMIN, run_id, policy)
        assert len(devices) == 12 and devices[0] == "cpu0"
        for name in ARRAYS:
            read, ran = getattr(schedule, name), getattr(original, name)
            assert read.dtype == ran.dtype and np.array_equal(read, ran), (policy, name)


def test_a_warm_started_rl_stores_its_schedule_and_a_fresh_one_does_not():
    body = {**SMALL, "policies": ["rl", "greedy"]}
    fresh, _ = executed(body)
    warm, computed = executed({**body, "rl_warm_start": True})
    assert stored_rows(fresh) == [] and stored_rows(warm) == ["rl"]
    assert np.array_equal(schedules.get_schedule(ADMIN, warm, "rl")[1].end, computed["rl"].end)


def changed_simulator(monkeypatch) -> None:
    """As if the simulator changed since the run: a new version whose schedules end later."""

    def later(*args):
        schedule = original(*args)
        return replace(schedule, end=schedule.end + 1e-9)

    original = simulation.policy_schedule
    monkeypatch.setattr(simulation, "policy_schedule", later)
    monkeypatch.setattr(schedules, "engine_version", lambda: "0123456789abcdef")


def test_a_schedule_the_simulator_no_longer_reproduces_is_refused_naming_why(monkeypatch):
    run_id, _ = executed({**SMALL, "policies": ["greedy", "heft"]})
    changed_simulator(monkeypatch)
    with pytest.raises(ScheduleNotReproducible, match="0123456789abcdef now") as refused:
        schedules.get_schedule(ADMIN, run_id, "heft")
    assert "the simulator changed since the run (version " in str(refused.value)
    assert f"GET /api/v1/runs/{run_id}/results" in str(refused.value)


def test_the_api_answers_409_and_the_run_page_says_why_for_a_schedule_that_changed(monkeypatch):
    run_id, _ = executed({**SMALL, "policies": ["greedy"]})
    changed_simulator(monkeypatch)
    with TestClient(app, cookies={SESSION_COOKIE: TEST_API_KEY}) as client:
        for query in ("policy=greedy", "policy=greedy&format=csv"):
            answer = client.get(f"/api/v1/runs/{run_id}/schedule?{query}")
            assert answer.status_code == 409, query
            assert "the simulator changed since the run" in answer.json()["detail"]
        page = client.get(f"/runs/{run_id}")
        assert page.status_code == 200 and "schedule as CSV" in page.text
        charts = client.get(f"/runs/{run_id}/charts/greedy").json()
        assert charts["figures"] == {}
        assert charts["note"].startswith("No schedule: ") and "simulator changed" in charts["note"]


def test_a_run_whose_digests_are_sha256_as_recorded_before_xxh3_is_still_checked(monkeypatch):
    run_id, computed = executed({**SMALL, "policies": ["greedy", "heft"]})
    with session_scope() as session:
        for policy, schedule in computed.items():
            session.execute(
                update(RunResult)
                .where(RunResult.run_id == run_id, RunResult.policy == policy)
                .values(schedule_digest=sha256_digest(schedule))
            )
    _, read = schedules.get_schedule(ADMIN, run_id, "heft")
    assert np.array_equal(read.end, computed["heft"].end)
    changed_simulator(monkeypatch)
    with pytest.raises(ScheduleNotReproducible, match="the recomputed schedule differs"):
        schedules.get_schedule(ADMIN, run_id, "greedy")


def test_a_run_recorded_before_schedules_were_recomputed_shows_its_stored_ones(monkeypatch):
    run_id, computed = executed({**SMALL, "policies": ["greedy", "heft"]})
    earlier = replace(computed["greedy"], start=computed["greedy"].start + 1.0)
    with session_scope() as session:  # as a migrated database has it: arrays, no digests
        session.execute(
            update(RunResult).where(RunResult.run_id == run_id).values(schedule_digest=None)
        )
        devices = [f"d{index}" for index in range(12)]
        schedule_store.add_schedule(
            session, run_id, "greedy", devices, schedule_store.packed(earlier)
        )
    assert schedules.available_schedules(ADMIN, run_id) == ["greedy"]
    read_devices, read = schedules.get_schedule(ADMIN, run_id, "greedy")
    assert read_devices == devices and np.array_equal(read.start, earlier.start)
    with pytest.raises(ScheduleNotFound, match="it has schedules for greedy"):
        schedules.get_schedule(ADMIN, run_id, "heft")
