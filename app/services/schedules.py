"""Per-task schedules: which ones a run stores, and recomputing the others when they are read.

A policy's schedule is a pure function of the run's spec and seed, which the simulator
reproduces bit for bit; so a run keeps only its digest (Schedule.digest, beside its results),
and the run page, the CSV and the API recompute it on read, showing it only if it matches.
Storing every schedule took 121 ms of a 30,000-task study run's 162-182 ms overhead
(bench/study.py). A policy that also decides on state outside the spec — `learned` (the
registry's active model), a warm-started `rl` (saved parameters), a runtime scheduler given a
fitted kernel model — has its schedule stored (a compressed .npz) instead: that state may have
changed or gone when the schedule is read. Runs recorded before keep their stored schedules.

`schedule_max_tasks` bounds both: the schedules of larger runs are neither stored nor
recomputed (recomputing one policy of a 100,000-task run takes about a second: bench/README.md).
"""

from __future__ import annotations

import functools
import uuid

from sqlalchemy.orm import Session

from app.db import runs as run_store
from app.db import schedules as schedule_store
from app.db.models import Run, RunStatus
from app.db.session import session_scope
from app.errors import InvalidSpec, RunNotFound, ScheduleNotFound, ScheduleNotReproducible
from app.runspec import RunSpec
from app.services.profiles import run_profiles
from app.services.simulation import recompute_schedule
from app.settings import get_settings
from app.sim.policies.learned import Learned
from app.sim.policies.rl import Rl
from app.sim.predicted import MODEL_POLICIES
from app.sim.schedule import Schedule
from app.sim.version import engine_version
from app.tenancy import Tenant


def stored_policies(spec: RunSpec, warm_rl: bool, fitted_kernel_model: bool) -> set[str]:
    """The spec's policies whose schedules a run stores: those deciding on more than the spec
    and seed (`warm_rl`: rl started from saved parameters; `fitted_kernel_model`: the runtime
    schedulers decided with a stored fit, services/perfmodels.py)."""
    stored = {Learned.name} & set(spec.policies)
    if warm_rl:
        stored |= {Rl.name} & set(spec.policies)
    if fitted_kernel_model:
        stored |= set(MODEL_POLICIES) & set(spec.policies)
    return stored


def shown(run: Run) -> bool:
    """Whether the run is small enough for its schedules to be shown (schedule_max_tasks)."""
    return run.num_tasks is not None and run.num_tasks <= get_settings().schedule_max_tasks


def get_schedule(tenant: Tenant, run_id: uuid.UUID, policy: str) -> tuple[list[str], Schedule]:
    """A run's per-task schedule of `policy`: (device names, schedule), stored or recomputed.
    ScheduleNotFound if it has none (too large, or not run); ScheduleNotReproducible if the
    recomputed one differs from what the run saw (the simulator changed since)."""
    with session_scope() as session:
        run = run_store.get_run(session, run_id, tenant=tenant)
        if run is None:
            raise RunNotFound(run_id)
        stored = schedule_store.get_schedule(session, run_id, policy)
        if stored is not None:
            return list(stored.devices), schedule_store.unpack(stored.arrays)
        digests = _digests(session, run)
        if policy not in digests:
            raise ScheduleNotFound(run_id, policy, _missing(run, _available(session, run)))
    devices, schedule = _recomputed(run_id, policy, digests[policy])
    return list(devices), schedule


@functools.lru_cache(maxsize=8)
def _recomputed(run_id: uuid.UUID, policy: str, digest: str) -> tuple[list[str], Schedule]:
    """The policy's schedule recomputed from the run's spec and seed, if bit-identical to the
    run's (`digest`). Cached: the JSON pages of one schedule (1000 tasks each) recompute it
    once, and a run's spec never changes (about 3 MB per 100,000 tasks)."""
    with session_scope() as session:
        run = run_store.get_run(session, run_id)
    if run is None:  # deleted since the caller read it
        raise RunNotFound(run_id)
    try:
        spec = RunSpec.model_validate(run.spec)
        devices, schedule = recompute_schedule(spec, policy, run_profiles(run.tenant))
    except (InvalidSpec, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise ScheduleNotReproducible(run.id, policy, f"{_changed(run)}: {exc}") from exc
    if not schedule.matches(digest):
        reason = f"{_changed(run)}: the recomputed schedule differs from the run's"
        raise ScheduleNotReproducible(run.id, policy, f"{reason}; {_results_hint(run)}")
    return devices, schedule


def _changed(run: Run) -> str:
    """What differs from when the run ran: the simulator's version, or (the same version)
    something outside its code: a library (numba), the machine, or an input outside the spec."""
    now = engine_version()
    if run.engine_version != now:
        return f"the simulator changed since the run (version {run.engine_version} then, {now} now)"
    return f"the simulator is the run's version ({now}); a library, the machine or an input changed"


def available_schedules(tenant: Tenant, run_id: uuid.UUID) -> list[str]:
    """The policies of the run whose per-task schedules can be read (stored or recomputed)."""
    with session_scope() as session:
        run = run_store.get_run(session, run_id, tenant=tenant)
        if run is None:
            raise RunNotFound(run_id)
        return _available(session, run)


def _digests(session: Session, run: Run) -> dict[str, str]:
    """The digests of the schedules recomputed on read: none for a run too large to show."""
    return schedule_store.digests(session, run.id) if shown(run) else {}


def _available(session: Session, run: Run) -> list[str]:
    """The policies whose schedules can be read: stored, or recomputed."""
    return sorted({*schedule_store.stored_policies(session, run.id), *_digests(session, run)})


def _missing(run: Run, available: list[str]) -> str:
    reason = no_schedule_reason(run, available)
    return f"{reason}; {_results_hint(run)}" if run.status == RunStatus.SUCCEEDED else reason


def _results_hint(run: Run) -> str:
    return f"its metrics and utilization: GET /api/v1/runs/{run.id}/results"


def no_schedule_reason(run: Run, available: list[str]) -> str:
    """Why the run has no schedule for a policy, `available` those it has: the API's 404 and the
    run's page say it in these words (a succeeded run above schedule_max_tasks has none)."""
    if available:
        return f"it has schedules for {', '.join(sorted(available))}"
    if run.status != RunStatus.SUCCEEDED:
        return f"the run is {run.status}"
    limit = get_settings().schedule_max_tasks
    if run.num_tasks is not None and run.num_tasks <= limit:  # the limit was lower then
        return "its per-task schedules were not kept"
    size = "it had more" if run.num_tasks is None else f"its {run.num_tasks:,} tasks are more"
    return f"{size} than the {limit:,} whose per-task schedules are kept (HMS_SCHEDULE_MAX_TASKS)"
