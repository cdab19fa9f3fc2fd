"""Kernel performance models against the real database (no worker: execute_run is called
directly): what runs observe is recorded once, models are fitted on it and stored per tenant,
profile and contention, and a run records the version it decided with.

The runs that decide with a model run `dmda` (policies/runtime.py) beside `cpu_only`; the others
`heft` and `cpu_only`, which decide with none (their first policy's executions are recorded)."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.deps import SESSION_COOKIE
from api.main import app
from app.db import packed
from app.db import perfmodels as store
from app.db.models import KernelModelFit, KernelObservationSet
from app.db.session import session_scope
from app.errors import InvalidSpec
from app.ml.perfmodels import RegressionModel
from app.runspec import RunSpec
from app.services import perfmodels, runs
from app.services.runs import ExecutionOutcome
from app.services.simulation import simulate_spec
from app.tenancy import Tenant
from tests.conftest import KERNEL_PROFILE as PROFILE
from tests.conftest import TEAM_A_KEY, TEAM_B_KEY, TEST_API_KEY
from tests.conftest import tiled_spec as tiled
from tests.fakes import RecordingQueue

TEAM_A, TEAM_B = Tenant("team-a"), Tenant("team-b")


@pytest.fixture
def queue(servers):
    return RecordingQueue()


def dmda_tiled(tile_size=256, **fields):
    """tiled_spec's Cholesky decided by dmda, with the run's kernel model, and cpu_only."""
    return tiled(tile_size, **({"policies": ["dmda", "cpu_only"]} | fields))


def execute(queue, body, tenant=TEAM_A):
    run_id = runs.submit_run(tenant, RunSpec.model_validate(body), queue).run.id
    assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED
    return run_id


def observations_of(run_id):
    with session_scope() as session:
        return store.observation_count(session, run_id)


def fits(tenant=TEAM_A, model=None):
    with session_scope() as session:
        query = select(KernelModelFit).where(KernelModelFit.tenant == tenant.name)
        if model is not None:
            query = query.where(KernelModelFit.model == model)
        return list(session.scalars(query.order_by(KernelModelFit.version)))


def test_a_kernel_run_records_its_first_policys_observations_once_even_when_redelivered(queue):
    spec = RunSpec.model_validate(tiled())
    expected = perfmodels.run_observations(spec, simulate_spec(spec), 10_000)
    num_tasks = 56  # Cholesky on 6 x 6 tiles
    assert expected is not None and expected.count == num_tasks  # heft's whole tasks, once each
    run_id = execute(queue, tiled())
    assert observations_of(run_id) == num_tasks
    assert runs.execute_run(run_id) == ExecutionOutcome.SKIPPED  # a redelivery after the commit
    assert observations_of(run_id) == num_tasks
    with session_scope() as session:
        sets = session.scalars(
            select(KernelObservationSet).where(KernelObservationSet.run_id == run_id)
        ).all()
    assert [(s.tenant, s.profile, s.count) for s in sets] == [("team-a", PROFILE, num_tasks)]
    seconds = packed.unpack(sets[0].seconds, packed.FLOAT64)
    assert sorted(seconds.tolist()) == sorted(expected.seconds.tolist())


def test_a_run_left_running_by_a_crashed_worker_records_its_observations_once(queue):
    run_id = runs.submit_run(TEAM_A, RunSpec.model_validate(tiled()), queue).run.id
    with session_scope() as session:  # claimed by a worker that died before its commit
        session.get(runs.Run, run_id).status = "running"
    assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED
    assert observations_of(run_id) == 56


def test_a_deleted_run_takes_its_observations_but_not_the_fits_made_on_them(queue):
    taught = execute(queue, dmda_tiled())
    execute(queue, dmda_tiled())
    runs.delete_run(TEAM_A, taught)
    with session_scope() as session:  # not merely unlinked from it (the schema's SET NULL)
        assert session.scalar(select(func.sum(KernelObservationSet.count))) == 56
    assert [fit.observation_count for fit in fits(model="history")] == [0, 56]


def test_a_run_records_at_most_the_bounded_number_of_observations(queue, monkeypatch):
    monkeypatch.setattr(runs.get_settings(), "perf_observations_per_run", 10)
    assert observations_of(execute(queue, tiled())) == 10


def test_a_run_whose_tasks_call_no_kernel_records_no_observation(queue):
    body = {"workload": {"kind": "explicit", "compute": [[1.0, 2.0]]}, "policies": ["heft"]}
    assert observations_of(execute(queue, body)) == 0


def test_a_run_decides_with_a_stored_fit_on_the_tenants_observations_and_records_it(
    queue, monkeypatch
):
    # Runs 0 of the learning curve: no observation, an empty fit (uncalibrated everywhere).
    first = execute(queue, dmda_tiled(256, perf_model="regression"))
    assert runs.get_run(TEAM_A, first).perf_model_version == 1
    execute(queue, dmda_tiled(512, perf_model="regression"))
    decided_with = []
    simulate = runs.simulate_spec

    def noting_the_model(*args):
        decided_with.append(args[5])
        return simulate(*args)

    monkeypatch.setattr(runs, "simulate_spec", noting_the_model)
    third = execute(queue, dmda_tiled(256, perf_model="regression"))
    v1, v2, v3 = fits(model="regression")
    assert (v1.observation_count, v2.observation_count, v3.observation_count) == (0, 56, 112)
    assert runs.get_run(TEAM_A, third).perf_model_version == 3
    assert v1.state == v2.state == {"coefficients": []}  # one tile size: no power law yet
    model = decided_with[0]
    assert model.name == "regression" and model.to_state() == v3.state
    # Fitted on exactly the two earlier runs' observations, at two tile sizes.
    with session_scope() as session:
        scope = store.Scope("team-a", PROFILE, "alone")
        window = store.Window(v3.newest_observation_id, v3.observation_count)
        seen = store.observations_in(session, scope, window)
    assert sorted(set(seen.size.tolist())) == [256, 512]
    assert v3.state == RegressionModel().fit(seen).to_state() and v3.state["coefficients"]
    # Pinned: the same model again, however many observations came since; nothing refitted.
    pinned = execute(queue, dmda_tiled(256, perf_model="regression", perf_model_version=3))
    assert runs.get_run(TEAM_A, pinned).perf_model_version == 3
    assert decided_with[-1].to_state() == v3.state
    assert len(fits(model="regression")) == 3


def test_a_fit_on_the_same_observations_is_made_once(queue):
    execute(queue, dmda_tiled())  # decided with history v1, fitted on nothing
    spec = RunSpec.model_validate(dmda_tiled(perf_model="history"))
    first, again = (perfmodels.model_for_run(spec, "team-a") for _ in range(2))
    assert first.version == again.version == 2
    assert [fit.observation_count for fit in fits(model="history")] == [0, 56]
    assert first.model is not None and first.model.to_state() == again.model.to_state()


def test_a_worker_that_loses_the_race_to_store_a_fit_decides_with_the_winners(queue, monkeypatch):
    execute(queue, dmda_tiled())  # history v1, on nothing
    spec = RunSpec.model_validate(dmda_tiled(perf_model="history"))
    winner = perfmodels.model_for_run(spec, "team-a")  # v2, on the first run's 56
    found = store.fit_on
    misses = iter([True])

    def stored_after_the_lookup(*args):  # the other worker stores its fit just after we looked
        return None if next(misses, False) else found(*args)

    monkeypatch.setattr(store, "fit_on", stored_after_the_lookup)
    loser = perfmodels.model_for_run(spec, "team-a")
    assert loser.version == winner.version == 2
    assert len(fits(model="history")) == 2


def test_learned_is_stored_as_an_artifact_and_read_back_identically(queue, monkeypatch):
    monkeypatch.setattr(perfmodels, "make_model", _small_learned)
    execute(queue, dmda_tiled())
    spec = RunSpec.model_validate(dmda_tiled(perf_model="learned"))
    chosen = perfmodels.model_for_run(spec, "team-a")
    (fit,) = fits(model="learned")
    assert fit.observation_count == 56 and fit.artifact is not None
    again = perfmodels.stored_model(fit)
    for device in ("cpu", "gpu"):
        first = chosen.model.predict("gemm", [256, 512], device)
        assert list(first) == list(again.predict("gemm", [256, 512], device))
        assert all(value > 0 for value in first)


def _small_learned(name):
    from app.ml.perfmodels import LearnedModel, make_model
    from app.ml.training import FitParams

    return LearnedModel(FitParams(max_iter=20)) if name == "learned" else make_model(name)


def test_exact_and_runs_without_a_runtime_scheduler_store_no_fit(queue):
    exact = execute(queue, dmda_tiled(perf_model="exact"))
    unused = execute(queue, {**dmda_tiled(perf_model="regression"), "policies": ["cpu_only"]})
    assert runs.get_run(TEAM_A, exact).perf_model_version is None
    assert runs.get_run(TEAM_A, unused).perf_model_version is None
    assert fits() == []
    assert observations_of(exact) == observations_of(unused) == 56  # both still teach


def test_tenants_neither_see_nor_learn_from_each_others_observations(queue):
    execute(queue, dmda_tiled(perf_model="history"), TEAM_A)
    execute(queue, dmda_tiled(perf_model="history"), TEAM_A)
    execute(queue, dmda_tiled(perf_model="history"), TEAM_B)
    assert [fit.observation_count for fit in fits(TEAM_A)] == [0, 56]
    assert [fit.observation_count for fit in fits(TEAM_B)] == [0]  # not team-a's 112
    listed, total = perfmodels.list_fits(TEAM_B, 20, 0)
    assert total == 1 and {fit.tenant for fit in listed} == {"team-b"}
    (view,) = perfmodels.models_overview(TEAM_B)
    # Its fit came before its run's observations: uncalibrated at every size it observed.
    assert view.predictions and {row.kernel for row in view.predictions} == {
        "gemm",
        "potrf",
        "syrk",
        "trsm",
    }
    assert all(row.predicted_s == {"history": None} for row in view.predictions)
    pinned = RunSpec.model_validate(dmda_tiled(perf_model="history", perf_model_version=2))
    with pytest.raises(InvalidSpec) as refused:  # team-a's version 2 is not team-b's
        runs.submit_run(TEAM_B, pinned, queue)
    assert refused.value.location == ("body", "perf_model_version")
    with session_scope() as session:
        assert session.scalar(select(func.sum(KernelObservationSet.count))) == 168


def test_the_api_lists_only_the_callers_fits_and_refuses_bad_models(queue):
    execute(queue, dmda_tiled(perf_model="history"), TEAM_A)
    execute(queue, dmda_tiled(perf_model="regression"), TEAM_B)
    with TestClient(app) as client:
        mine = client.get("/api/v1/perf-models", headers={"X-API-Key": TEAM_A_KEY})
        every = client.get("/api/v1/perf-models", headers={"X-API-Key": TEST_API_KEY})
        bad = client.post(
            "/api/v1/runs", json=dmda_tiled(perf_model="oracle"), headers={"X-API-Key": TEAM_A_KEY}
        )
    assert mine.status_code == 200 and mine.json()["total"] == 1
    (item,) = mine.json()["items"]
    assert (item["tenant"], item["model"], item["version"]) == ("team-a", "history", 1)
    assert (item["profile"], item["contention"], item["observation_count"]) == (PROFILE, "alone", 0)
    assert item["state"] == {"minimum_samples": 10, "entries": []}
    assert {(fit["tenant"], fit["model"]) for fit in every.json()["items"]} == {
        ("team-a", "history"),
        ("team-b", "regression"),
    }
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "perf_model"]


def test_the_models_page_shows_each_models_predictions_beside_the_measured_means(queue):
    for _ in range(3):  # 56 observations, 112 at the third run's fit
        execute(queue, dmda_tiled(perf_model="history"), TEAM_A)
    with TestClient(app, cookies={SESSION_COOKIE: TEAM_A_KEY}) as client:
        page = client.get("/models")
    with TestClient(app, cookies={SESSION_COOKIE: TEAM_B_KEY}) as client:
        other = client.get("/models")
    assert page.status_code == 200
    assert f'data-profile="{PROFILE}" data-contention="alone"' in page.text
    assert "<td>v3</td><td>112</td>" in page.text
    (view,) = perfmodels.models_overview(TEAM_A)
    at_256 = [row for row in view.predictions if row.size == 256]
    # The runs drew the same truth: heft observed each task once per run, >= 10 per gemm on a
    # kind it ran twice there; the history mean is then within the profile's spread.
    calibrated = [row for row in at_256 if row.predicted_s["history"] is not None]
    assert calibrated and all(
        row.predicted_s["history"] == pytest.approx(row.measured_s, rel=0.5) for row in calibrated
    )
    assert PROFILE not in other.text


def test_a_fit_is_reused_until_the_scope_has_gained_its_refit_fraction(queue, monkeypatch):
    monkeypatch.setattr(perfmodels.get_settings(), "perf_model_refit_fraction", 1.5)
    spec = dmda_tiled(perf_model="history")
    versions = [runs.get_run(TEAM_A, execute(queue, spec)).perf_model_version for _ in range(4)]
    # v1 on nothing; v2 on the first run's 56; the third run finds 56 new < 1.5 * 56: v2 again;
    # the fourth finds 112 new >= 84: v3 on all 168.
    assert versions == [1, 2, 2, 3]
    assert [fit.observation_count for fit in fits(model="history")] == [0, 56, 168]


def test_dmda_decides_differently_with_the_model_the_run_names(queue):
    # Uncalibrated history (nothing observed yet) makes dmda explore; the profile's exact means
    # let it place by predicted finish: the same scenario, different schedules.
    explored = execute(queue, dmda_tiled(512, perf_model="history"))
    informed = execute(queue, dmda_tiled(512, perf_model="exact"))
    makespans = [
        next(r for r in runs.get_results(TEAM_A, run)[1] if r.policy == "dmda").makespan
        for run in (explored, informed)
    ]
    assert makespans[1] < makespans[0]
