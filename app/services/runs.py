"""Simulation runs: submit, execute, cancel, read.

`execute_run` is the whole story of executing a run on a worker:
claim the row (skip it if already terminal: a redelivered message must not duplicate results),
mark it running, build the problem from the spec and its seeds, simulate each policy and compute
its metrics while reporting throttled progress and the phase it is in, pack the per-task
schedules it stores (those its spec and seed do not determine: services/schedules.py), then
write every result with its schedule's digest, those schedules, what learning policies learned,
the training samples, and `succeeded` in one transaction.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.db import perfmodels as perf_store
from app.db import policy_states, schedules
from app.db import runs as run_store
from app.db import training as training_store
from app.db.models import PolicyState, Run, RunResult, RunStatus, utcnow
from app.db.schedules import PackedSchedule
from app.db.session import session_scope
from app.errors import (
    InvalidSpec,
    RunNotCancellable,
    RunNotDeletable,
    RunNotFound,
    RunNotReady,
    TransientStoreError,
)
from app.ml.training import samples_from_run
from app.runmemory import built_shape, check_run_memory, planned_shape
from app.runspec import RunSpec, build_problem, checked_profile, invalid_spec
from app.services import lifecycle, perfmodels, registry, studies
from app.services import schedules as schedule_service
from app.services.idempotency import submit_once
from app.services.ports import ProgressSink, RunQueue
from app.services.profiles import run_profiles
from app.services.simulation import (
    BUILDING,
    EXPERIMENT_SHARE,
    Simulation,
    result_documents,
    simulate_spec,
)
from app.settings import get_settings
from app.sim.policies.learned import Learned, PerformanceModel
from app.sim.policies.rl import Rl, merge_learning
from app.sim.version import engine_version
from app.tenancy import Tenant


@dataclass(frozen=True)
class Submission:
    run: Run
    created: bool


def submit_run(
    tenant: Tenant, spec: RunSpec, queue: RunQueue, idempotency_key: str | None = None
) -> Submission:
    """Record the tenant's run, commit, and only then enqueue it (a task never names an
    uncommitted row).

    An imported workload (a file's content, explicit costs) is parsed first, so a malformed DAG
    or file is refused here, with the reason, instead of failing later on a worker. The same
    idempotency key (of the same tenant) with the same spec returns the existing run, sending it
    if it was never sent (idempotency.submit_once); with another spec it is a conflict. If the
    broker is down the run stays queued and the error is raised."""
    check_submission(tenant, spec)
    document = spec.model_dump(mode="json")

    def create(session: Session, digest: str) -> Run:
        return run_store.add_run(
            session,
            spec=document,
            priority=spec.priority,
            tenant=tenant.name,
            idempotency_key=idempotency_key,
            request_digest=digest,
        )

    run, created = submit_once(
        idempotency_key,
        document,
        lookup=lambda session, key: run_store.get_run_by_idempotency_key(session, tenant.name, key),
        create=create,
        send=lambda run: _send(run, queue),
    )
    return Submission(run, created)


def _send(run: Run, queue: RunQueue) -> None:
    """Enqueue a committed run and note when. If the broker is down the run stays queued, unsent,
    and the recovery sweep sends it later (or the client's retry with the same key does)."""
    lifecycle.send(run, lambda: queue.enqueue_run(run.id, run.priority), "run")


def check_submission(tenant: Tenant, spec: RunSpec) -> None:
    """InvalidSpec if `submit_run` would refuse the spec (beyond its pydantic validation): what
    the dashboard's form shows again after a failed submit, without submitting."""
    _check_submittable(spec, tenant)
    perfmodels.check_pinned(spec, tenant)


def _check_submittable(spec: RunSpec, tenant: Tenant) -> None:
    try:
        checked_profile(spec, run_profiles(tenant.name))
    except ValidationError as exc:
        raise invalid_spec(exc) from exc
    if spec.paths:
        raise InvalidSpec(
            "the API does not read files: send the content inline (`data` for wfcommons, "
            "`text` for stg); `path` is for `hms simulate`",
            ("body", "workload", "path"),
        )
    shape = planned_shape(spec)
    if spec.imported:
        try:
            shape = built_shape(spec, build_problem(spec, run_profiles(tenant.name)).workload)
        except InvalidSpec as exc:
            raise InvalidSpec(str(exc), ("body", "workload")) from exc
    if shape is not None:
        check_run_memory(spec, shape, get_settings().run_memory_budget_mb)


log = logging.getLogger(__name__)

#: Random stream (besides the policies') that picks which tasks of a run become samples.
SAMPLE_STREAM = 0x5A3


class ExecutionOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # already terminal when the message arrived (e.g. a redelivery)
    GONE = "gone"  # deleted before its message was taken (cancelled then deleted, its study too)


def execute_run(
    run_id: uuid.UUID, sink: ProgressSink | None = None, worker: str | None = None
) -> ExecutionOutcome:
    """Execute the run as `worker` (its Celery hostname, recorded with the run)."""
    outcome, study_id = _execute_once(run_id, sink, worker)
    if study_id is not None:
        studies.aggregate_if_done(study_id)  # the last run of a study aggregates it
    return outcome


#: How long (s) a message of several runs (`execute_runs`) goes on starting its next run; runs
#: left then are sent again one message each. Runs small enough to share a message take
#: milliseconds (what they save is Celery's handling of a message and the study's check, 6-15
#: ms a run: bench/README.md); a run of minutes ends its message's sharing after itself, so the
#: others spread over the workers instead of waiting behind it.
SHARED_MESSAGE_BUDGET_S = 2.0


def shared_message_budget_s() -> float:
    """SHARED_MESSAGE_BUDGET_S, within what the task's soft time limit leaves after one run's
    limit: a run started within the budget ends before the message's task is stopped."""
    settings = get_settings()
    return min(SHARED_MESSAGE_BUDGET_S, settings.task_soft_time_limit_s - settings.run_time_limit_s)


@dataclass(frozen=True)
class SharedOutcome:
    """How a message of several runs ended: each run started, in order, with its outcome and
    seconds; those not started (the budget was spent), sent again."""

    executed: list[tuple[uuid.UUID, ExecutionOutcome, float]]
    left: list[uuid.UUID]


def execute_runs(
    run_ids: Collection[uuid.UUID],
    sink_for: Callable[[uuid.UUID], ProgressSink | None],
    queue: RunQueue,
    priority: int,
    worker: str | None = None,
    budget_s: float | None = None,
) -> SharedOutcome:
    """Execute several runs one after the other, as `execute_run` does each, while the message
    is within `budget_s` (None: shared_message_budget_s()); the first always starts, and those
    left are sent again through `queue`, one message each, with the message's `priority`.
    Their studies are checked once all are done, not after each run: a study's last runs
    ending at once still cannot both miss the other, each check coming after its own runs'
    commits (studies.aggregate_if_done). `sink_for(run_id)` gives each run its progress sink."""
    budget_s = shared_message_budget_s() if budget_s is None else budget_s
    started = time.monotonic()
    ordered = list(run_ids)
    executed: list[tuple[uuid.UUID, ExecutionOutcome, float]] = []
    touched: dict[uuid.UUID, None] = {}  # studies to check, in order
    for index, run_id in enumerate(ordered):
        began = time.monotonic()
        if index and began - started >= budget_s:
            break
        outcome, study_id = _execute_once(run_id, sink_for(run_id), worker)
        executed.append((run_id, outcome, time.monotonic() - began))
        if study_id is not None:
            touched[study_id] = None
    left = ordered[len(executed) :]
    for run_id in left:
        queue.enqueue_run(run_id, priority)
    for study_id in touched:
        studies.aggregate_if_done(study_id)
    return SharedOutcome(executed, left)


def _execute_once(
    run_id: uuid.UUID, sink: ProgressSink | None, worker: str | None
) -> tuple[ExecutionOutcome, uuid.UUID | None]:
    """Execute the run, or skip it if there is nothing to do; returns how it ended and the
    study to check after it (None: none), which the caller checks."""
    try:
        run = lifecycle.claim(Run, run_id, RunNotFound, worker, BUILDING)
    except RunNotFound:
        # A normal end for the message, not a fault: the worker's metrics count it by outcome
        # (hms_worker_runs{outcome="gone"}), and it is logged without a traceback.
        log.info("run %s no longer exists (deleted): its message is dropped", run_id)
        return ExecutionOutcome.GONE, None
    if isinstance(run, lifecycle.Unclaimed):
        # Found ended, or failed now: a redelivery after a crash may have come between the run's
        # commit and its study's aggregation, so its study is checked.
        gave_up = run is lifecycle.Unclaimed.GAVE_UP
        outcome = ExecutionOutcome.FAILED if gave_up else ExecutionOutcome.SKIPPED
        return outcome, studies.study_of(run_id)
    # The claim wrote the phase the run begins in: its first report need not.
    outcome = _execute(run_id, dict(run.spec), run.tenant, sink, time.monotonic())
    return outcome, run.study_id  # the claim read it: a lone run needs no look-up


def _execute(
    run_id: uuid.UUID,
    document: dict[str, Any],
    tenant: str | None,
    sink: ProgressSink | None,
    claimed_at: float,
) -> ExecutionOutcome:
    """Simulate the claimed run's spec (`document`), with the kernel profiles its `tenant` may
    name, and record how it ended; its claim wrote its first phase at `claimed_at`."""
    settings = get_settings()
    deadline = time.monotonic() + settings.run_time_limit_s
    reporter = lifecycle.ProgressReporter(Run, run_id, sink, deadline, reported_at=claimed_at)
    try:
        spec = RunSpec.model_validate(document)
        rl_start = _rl_start(spec)
        model, profiles = _performance_model(spec), run_profiles(tenant)
        chosen = perfmodels.model_for_run(spec, tenant)
        simulation = simulate_spec(spec, reporter, rl_start.state, model, profiles, chosen.model)
        stored = schedule_service.stored_policies(
            spec, rl_start.state is not None, chosen.model is not None
        )
        kept = _kept_schedules(simulation, stored, reporter)
    except lifecycle.Cancelled:
        return ExecutionOutcome.CANCELLED
    except lifecycle.OutOfTime:
        fail_run(run_id, f"exceeded its time limit of {settings.run_time_limit_s:g} s")
        return ExecutionOutcome.FAILED
    except MemoryError:  # the pool process's cap (app/runtime/memory.py): this run alone fails
        fail_run(run_id, out_of_memory())
        return ExecutionOutcome.FAILED
    except TransientStoreError:
        raise
    except Exception as exc:  # the core raised: fail once with a readable error, no retry storm
        fail_run(run_id, _describe(exc))
        return ExecutionOutcome.FAILED
    versions = Versions(rl_start, chosen.version)
    return _complete(run_id, spec, tenant, Produced(simulation, kept), versions)


#: The phase of a run while it stores what it produced (its per-task schedules packed first).
STORING = "storing results"


def _kept_schedules(
    simulation: Simulation, stored: set[str], report: ProgressSink
) -> dict[str, PackedSchedule]:
    """The `stored` policies' schedules packed for storing (the others are recomputed on read:
    services/schedules.py), if the run is small enough to show them (`schedule_max_tasks`);
    packing 100k tasks' schedule takes ~0.4 s, so each is reported. These are the run's last
    reports: its row is locked while the transaction stores it all."""
    outcomes = [outcome for outcome in simulation.outcomes if outcome.policy in stored]
    if not outcomes or simulation.problem.num_tasks > get_settings().schedule_max_tasks:
        report(EXPERIMENT_SHARE, STORING)
        return {}
    kept = {}
    share = (1.0 - EXPERIMENT_SHARE) / len(outcomes)
    for index, outcome in enumerate(outcomes):
        report(EXPERIMENT_SHARE + share * index, STORING)
        kept[outcome.policy] = schedules.packed(outcome.schedule)
    return kept


@dataclass(frozen=True)
class Produced:
    """What a run stores: its simulation, and its schedules packed (none if not kept)."""

    simulation: Simulation
    schedules: dict[str, PackedSchedule]


@dataclass(frozen=True)
class RlStart:
    """What rl started from: saved parameters and their version, or (None, None) for a fresh
    agent."""

    state: dict[str, Any] | None = None
    version: int | None = None


@dataclass(frozen=True)
class Versions:
    """What the run started from that it records: rl's saved parameters, the kernel model's
    fitted version."""

    rl: RlStart
    perf_model: int | None


def _rl_start(spec: RunSpec) -> RlStart:
    """What rl starts from: the latest saved parameters if the spec asks for a warm start, else
    nothing (a fresh agent, and a run reproducible from its spec alone)."""
    if Rl.name not in spec.policies or not spec.rl_warm_start:
        return RlStart()
    with session_scope() as session:
        saved = policy_states.latest(session, Rl.name)
        return RlStart() if saved is None else RlStart(dict(saved.state), saved.version)


def save_learning(
    session: Session, start: RlStart, learned: dict[str, Any], run_id: uuid.UUID | None
) -> int:
    """Save what rl learned in a run that started from `start` as rl's next version; returns it.

    The saved parameters are everything rl learned in all runs, each run adding its own: a
    version saved by another run after this one started (a concurrent run, or any run for a
    fresh start) stays in, and this run's learning is merged onto it (rl.merge_learning), never
    written over it. policy_states.add_version makes concurrent savers take turns."""

    def next_state(newest: PolicyState | None) -> dict[str, Any]:
        if newest is None or newest.version == start.version:
            return learned  # nothing saved since this run started: its state as it is
        return merge_learning(dict(newest.state), start.state, learned)

    return policy_states.add_version(session, Rl.name, next_state, run_id)


def _performance_model(spec: RunSpec) -> PerformanceModel | None:
    """The active registry version (or the bootstrap model) when `learned` runs."""
    if Learned.name not in spec.policies:
        return None
    with session_scope() as session:
        return registry.active_model(session)


def _complete(
    run_id: uuid.UUID,
    spec: RunSpec,
    tenant: str | None,
    produced: Produced,
    versions: Versions,
) -> ExecutionOutcome:
    """Write every result, the schedules kept, what learning policies learned, the training
    samples, the kernel executions observed (for the `tenant`'s performance models) and
    `succeeded` in one transaction, if the run is still running (lifecycle.finish); the blocks
    of ids of the samples and observations are drawn in it (db/packed.draw_ids)."""
    settings = get_settings()
    simulation = produced.simulation
    devices = simulation.problem.cluster.names()
    stream = np.random.SeedSequence(entropy=spec.seed, spawn_key=(SAMPLE_STREAM,))
    samples = samples_from_run(
        simulation.problem,
        simulation.outcomes,
        settings.samples_per_run,
        np.random.default_rng(stream),
    )
    scope = None if tenant is None else perfmodels.scope_of(spec, tenant)
    limit = settings.perf_observations_per_run
    observations = None if scope is None else perfmodels.run_observations(spec, simulation, limit)

    results = [
        {**document, "schedule_digest": outcome.schedule.digest()}
        for document, outcome in zip(result_documents(simulation), simulation.outcomes, strict=True)
    ]

    def record(session: Session, run: Run) -> None:
        run_store.add_results(session, run_id, results)
        for policy, packed in produced.schedules.items():
            schedules.add_schedule(session, run_id, policy, devices, packed)
        for outcome in simulation.outcomes:
            if outcome.learned_state is not None:  # rl, the one policy that learns
                save_learning(session, versions.rl, outcome.learned_state, run_id)
        if samples is not None:
            training_store.add_samples(session, run_id, samples)
        if scope is not None and observations is not None:
            perf_store.add_observations(session, scope, run_id, observations)
        run.model_version = simulation.model_version
        run.rl_state_version = versions.rl.version
        run.perf_model_version = versions.perf_model
        run.rank_by = simulation.rank_by
        run.num_tasks = simulation.problem.num_tasks
        run.engine_version = engine_version()
        run.progress = 1.0
        run.phase = None

    if not lifecycle.finish(Run, run_id, RunStatus.SUCCEEDED, record):
        # Cancelled meanwhile, or another delivery of the same message finished first.
        return ExecutionOutcome.SKIPPED
    return ExecutionOutcome.SUCCEEDED


def end_shared_message(
    run_ids: Collection[uuid.UUID], error: str, queue: RunQueue, priority: int
) -> None:
    """A message of several runs ended without its task's ending them (its pool process killed
    at the hard time limit, a MemoryError escaping a run's finish): the run it was executing
    fails with `error`, as a message of one run's would; those it had not started are sent
    again, one message each (its own is acknowledged, not delivered again); their studies are
    checked."""
    with session_scope() as session:
        found = run_store.statuses(session, run_ids)
    for run_id in run_ids:  # in the message's order (the database's is any)
        status = found[run_id][0] if run_id in found else None
        if status == RunStatus.RUNNING:
            fail_run(run_id, error)
        elif status == RunStatus.QUEUED:
            queue.enqueue_run(run_id, priority)
    for study_id in dict.fromkeys(study_id for _, study_id in found.values()):
        if study_id is not None:
            studies.aggregate_if_done(study_id)


def fail_run(run_id: uuid.UUID, error: str) -> None:
    """Record that a running run failed (once: no retry will follow)."""
    lifecycle.fail(Run, run_id, error)


def out_of_memory() -> str:
    """Why a run that hit its pool process's memory cap failed."""
    return f"needed more than the {get_settings().run_memory_budget_mb} MB a run may use"


def _describe(exc: Exception) -> str:
    """A readable error: "invalid spec: ..." for specs, else the exception's name in words (e.g.
    "soft time limit exceeded", from Celery) and its message when it has one of its own."""
    if isinstance(exc, InvalidSpec):
        return f"invalid spec: {exc}"
    name = re.sub(r"(?<!^)(?=[A-Z])", " ", type(exc).__name__).lower()
    message = str(exc)
    own = message and message != repr(exc) and not message.startswith(type(exc).__name__)
    return f"{name}: {message}" if own else name


def cancel_run(tenant: Tenant, run_id: uuid.UUID, queue: RunQueue) -> Run:
    """Cancel a queued or running run. A running one stops at its next progress report."""
    with session_scope() as session:
        run = run_store.get_run(session, run_id, lock=True, tenant=tenant)
        if run is None:
            raise RunNotFound(run_id)
        if RunStatus(run.status).is_terminal:
            raise RunNotCancellable(run_id, run.status)
        run.status = RunStatus.CANCELLED
        run.finished_at = utcnow()
    queue.revoke_run(run_id)
    studies.after_run_ended(run_id)
    return run


def delete_run(tenant: Tenant, run_id: uuid.UUID) -> None:
    """Delete a run that ended, with its results, schedules and training samples. A queued or
    running run must be cancelled first; a run of a study goes with its study."""
    with session_scope() as session:
        run = run_store.get_run(session, run_id, lock=True, tenant=tenant)
        if run is None:
            raise RunNotFound(run_id)
        if not RunStatus(run.status).is_terminal:
            raise RunNotDeletable(run_id, f"it is {run.status}; cancel it first (POST .../cancel)")
        if run.study_id is not None:
            raise RunNotDeletable(run_id, f"it belongs to study {run.study_id}; delete the study")
        run_store.delete_runs(session, [run_id])


def get_run(tenant: Tenant, run_id: uuid.UUID) -> Run:
    with session_scope() as session:
        run = run_store.get_run(session, run_id, tenant=tenant)
    if run is None:
        raise RunNotFound(run_id)
    return run


def list_runs(
    tenant: Tenant,
    status: RunStatus | None,
    limit: int,
    offset: int,
    study_id: run_store.StudyFilter = None,
) -> tuple[list[Run], int]:
    """A page of the tenant's runs, newest first, and how many match: with `study_id`, only that
    study's runs, or (run_store.NO_STUDY) only the runs of no study."""
    with session_scope() as session:
        return run_store.list_runs(
            session, tenant, status=status, limit=limit, offset=offset, study_id=study_id
        )


def study_names(
    tenant: Tenant, study_ids: Collection[uuid.UUID], newest: int
) -> dict[uuid.UUID, str]:
    """The names of the studies `study_ids` and of the tenant's `newest` studies, newest first
    (what a list of runs names their studies by and offers to filter by)."""
    with session_scope() as session:
        return run_store.study_names(session, tenant, study_ids, newest)


def get_results(tenant: Tenant, run_id: uuid.UUID) -> tuple[Run, list[RunResult]]:
    """A succeeded run and its results, best first; RunNotReady until it succeeded."""
    with session_scope() as session:
        run = run_store.get_run(session, run_id, tenant=tenant)
        if run is None:
            raise RunNotFound(run_id)
        if run.status != RunStatus.SUCCEEDED:
            raise RunNotReady(run_id, run.status, run.error)
        return run, run_store.results_of(session, run_id)
