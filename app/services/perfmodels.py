"""The kernel performance models runs decide with (docs/learning.md, "Kernel performance
models"): chosen per run by `spec.perf_model`, fitted on what the tenant's earlier runs observed
of the same profile and contention, persisted with a version the run records, shown on the
Models page.

A fit is made once per set of observations (the newest `perf_model_window` of the scope): a run
that finds a fit of its model on exactly the current observations decides with it; so does a run
whose scope has gained fewer than `perf_model_refit_fraction` times the observations the newest
fit was made on (a `learned` fit takes a minute at the full window: settings.py); else it fits
and stores the next version first. Every run decides with the model as stored (read back from
its JSON state), so a run redone with `perf_model_version` decides bit-identically.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import perfmodels as store
from app.db.models import KernelModelFit, utcnow
from app.db.perfmodels import Scope, Window
from app.db.session import session_scope
from app.errors import InvalidSpec, ProfileNotFound
from app.ml import artifacts
from app.ml.perfmodels import (
    CodedObservations,
    LearnedModel,
    Observations,
    PerformanceModel,
    make_model,
    model_from_state,
    observed_once,
)
from app.runspec import EXACT_MODEL, RunSpec
from app.services.profiles import run_profiles
from app.services.simulation import Simulation
from app.settings import get_settings
from app.sim.predicted import MODEL_NAMES, MODEL_POLICIES
from app.sim.profile import NotInProfile, Profile
from app.tenancy import Tenant

#: Tries to store a fit when other workers store fits of the same scope at the same time.
STORE_TRIES = 3


@dataclass(frozen=True)
class ChosenModel:
    """The fitted model a run decides with, and its stored version (None: none needed, or one
    the run builds itself: `exact`, or an unfitted model for a run with no tenant)."""

    model: PerformanceModel | None = None
    version: int | None = None


def scope_of(spec: RunSpec, tenant: str) -> Scope | None:
    """Whose observations of which hardware the spec's run learns from and teaches (None: its
    tasks call no kernel)."""
    profile = spec.kernel_profile_name
    return None if profile is None else Scope(tenant, profile, spec.contention)


def model_for_run(spec: RunSpec, tenant: str | None) -> ChosenModel:
    """The fitted model the run decides with: the pinned version, else a fit on the tenant's
    newest observations (stored first if it is new). Nothing when the run needs no fitted model
    (spec.kernel_model_name None or `exact`) or has no tenant (it then decides with an unfitted
    model: simulation.simulate_spec)."""
    name = spec.kernel_model_name
    scope = None if tenant is None else scope_of(spec, tenant)
    if name is None or name == EXACT_MODEL or scope is None:
        return ChosenModel()
    if spec.perf_model_version is not None:
        with session_scope() as session:
            return _chosen(_pinned(session, scope, name, spec.perf_model_version))
    settings = get_settings()
    for _ in range(STORE_TRIES):
        try:
            return _fitted(
                scope, name, settings.perf_model_window, settings.perf_model_refit_fraction
            )
        except IntegrityError:  # another worker stored this fit, or this version, first
            continue
    raise RuntimeError(f"could not store a fit of {name}: other workers kept storing theirs")


def check_pinned(spec: RunSpec, tenant: Tenant) -> None:
    """InvalidSpec at `perf_model_version` unless the tenant has that version of the model (for
    the run's profile and contention) or the run uses no fitted model."""
    name, scope = spec.kernel_model_name, scope_of(spec, tenant.name)
    if spec.perf_model_version is None or name in (None, EXACT_MODEL) or scope is None:
        return
    with session_scope() as session:
        _pinned(session, scope, name, spec.perf_model_version)


def _pinned(session: Session, scope: Scope, name: str, version: int) -> KernelModelFit:
    fit = store.fit_version(session, scope, name, version)
    if fit is None:
        raise InvalidSpec(
            f"you have no version {version} of {name} fitted on {scope.profile} "
            f"({scope.contention}): see GET /api/v1/perf-models",
            ("body", "perf_model_version"),
        )
    return fit


def _fitted(scope: Scope, name: str, limit: int, refit_fraction: float) -> ChosenModel:
    """The fit of `name` on the scope's newest `limit` observations, made and stored if new;
    the newest stored fit while the scope has gained fewer than `refit_fraction` times the
    observations it was made on."""
    with session_scope() as session:
        of = store.window(session, scope, limit)
        found = store.fit_on(session, scope, name, of)
        if found is not None:
            return _chosen(found)
        newest = store.newest_fit(session, scope, name)
        if newest is not None:
            gained = store.observations_after(session, scope, newest.newest_observation_id)
            if gained < refit_fraction * newest.observation_count:
                return _chosen(newest)
        observations = store.observations_in(session, scope, of)
    fit = _fit(name, observations, of)
    with session_scope() as session:
        return _chosen(store.add_fit(session, scope, name, **fit))


def _fit(name: str, observations: Observations, of: Window) -> dict[str, object]:
    """The columns of a new fit of `name` on `observations` (the window `of`)."""
    started = time.perf_counter()
    model = make_model(name).fit(observations)
    state, artifact = model.to_state(), None
    if isinstance(model, LearnedModel) and model.estimator is not None:
        artifact, state["artifact_digest"] = artifacts.dumps(model.estimator)
    return {
        "observation_count": of.count,
        "newest_observation_id": of.newest,
        "fitted_at": utcnow(),
        "fit_s": time.perf_counter() - started,
        "state": state,
        "artifact": artifact,
    }


def _chosen(fit: KernelModelFit) -> ChosenModel:
    return ChosenModel(stored_model(fit), fit.version)


def stored_model(fit: KernelModelFit) -> PerformanceModel:
    """The model as the fit stored it (a `learned` estimator verified by its digest)."""
    model = model_from_state(fit.model, fit.state)
    if isinstance(model, LearnedModel) and fit.artifact is not None:
        model.estimator = artifacts.loads(fit.artifact, fit.state["artifact_digest"])
    return model


def run_observations(spec: RunSpec, simulation: Simulation, limit: int) -> CodedObservations | None:
    """What the run teaches (perfmodels.observed_once, at most `limit`): the executions of its
    policies that decide with the kernel model, else of its first policy; None when its tasks
    call no kernel."""
    if simulation.problem.workload.tile_size is None:
        return None
    by_policy = {outcome.policy: outcome.schedule for outcome in simulation.outcomes}
    deciding = [policy for policy in spec.policies if policy in MODEL_POLICIES]
    policies = deciding or spec.policies[:1]
    return observed_once(simulation.problem, [by_policy[p] for p in policies], limit)


def list_fits(tenant: Tenant, limit: int, offset: int) -> tuple[list[KernelModelFit], int]:
    """The caller's fits (an admin key: everyone's), newest first, with the total."""
    with session_scope() as session:
        return store.list_fits(session, None if tenant.is_admin else tenant.name, limit, offset)


@dataclass(frozen=True)
class Prediction:
    """What each model predicts of one kernel at one tile size on one kind of device, beside
    the profile's measured mean (seconds; None where uncalibrated or not measured)."""

    kernel: str
    device: str
    size: int
    measured_s: float | None
    predicted_s: dict[str, float | None]


@dataclass(frozen=True)
class ScopeModels:
    """A (tenant, profile, contention)'s newest fit of each model, and their predictions of the
    kernels it observed at the sizes the profile measured."""

    scope: Scope
    fits: list[KernelModelFit]
    predictions: list[Prediction]


def models_overview(tenant: Tenant) -> list[ScopeModels]:
    """The Models page's kernel models: the caller's (an admin key: everyone's), per scope."""
    by_scope: dict[Scope, list[KernelModelFit]] = defaultdict(list)
    with session_scope() as session:
        for fit in store.latest_fits(session, None if tenant.is_admin else tenant.name):
            by_scope[Scope(fit.tenant, fit.profile, fit.contention)].append(fit)
        observed = {scope: store.observed_kernels(session, scope) for scope in by_scope}
    views = []
    for scope, fits in by_scope.items():
        fits.sort(key=lambda fit: MODEL_NAMES.index(fit.model))
        views.append(ScopeModels(scope, fits, _predictions(scope, fits, observed[scope])))
    return views


def _predictions(
    scope: Scope, fits: list[KernelModelFit], observed: list[tuple[str, str]]
) -> list[Prediction]:
    """Each fit's predictions of the observed (kernel, device) pairs at the profile's measured
    sizes (none for a pair the profile did not measure)."""
    profile = _profile_as_runs_see(scope)
    models = {fit.model: stored_model(fit) for fit in fits}
    rows = []
    for kernel, device in observed:
        try:
            curve = profile.curve(kernel, device) if profile is not None else None
        except NotInProfile:
            curve = None
        if curve is None:
            continue
        predicted = {
            name: model.predict(kernel, curve.sizes, device) for name, model in models.items()
        }
        for i, (size, measured) in enumerate(
            zip(curve.sizes.tolist(), curve.mean_s.tolist(), strict=True)
        ):
            guesses = {name: _seconds(values[i]) for name, values in predicted.items()}
            rows.append(Prediction(kernel, device, size, measured, guesses))
    return rows


def _profile_as_runs_see(scope: Scope) -> Profile | None:
    """The scope's profile with the timings of its contention under "alone" (as a run's truth
    reads them: RunSpec.as_run_sees); None if the tenant no longer has it."""
    try:
        profile = run_profiles(scope.tenant)(scope.profile)
    except ProfileNotFound:
        return None
    return profile.every_core_busy() if scope.contention == "all_busy" else profile


def _seconds(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
