"""Query functions of the kernel performance models: the observations runs record, the fits
made on them. They take the caller's session and never commit. Every query names the tenant:
one tenant's observations never teach another's models."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session, defer, load_only

from app.db import packed
from app.db.models import KernelModelFit, KernelObservationSet
from app.ml.perfmodels import CodedObservations, Observations

#: Where each observation's id comes from (db/packed.py).
OBSERVATION_IDS = "kernel_observation_ids"


@dataclass(frozen=True)
class Scope:
    """Whose observations of which hardware: a model learns from one scope only."""

    tenant: str
    profile: str
    contention: str


@dataclass(frozen=True)
class Window:
    """The newest `count` observations of a scope up to id `newest` (0: none): the set one fit
    is made on."""

    newest: int
    count: int


def add_observations(
    session: Session,
    scope: Scope,
    run_id: uuid.UUID,
    observations: CodedObservations,
) -> int:
    """Store them as one packed row (db/packed.py), with a block of ids drawn in the caller's
    transaction: as 5,000 rows they took ~220 ms to COPY."""
    count = observations.count
    if count == 0:
        return 0
    kernels, devices = observations.kernels, observations.devices
    codes = np.unique(observations.kernel * len(devices) + observations.device)
    pairs = sorted(f"{kernels[c // len(devices)]} {devices[c % len(devices)]}" for c in codes)
    packed.insert_set(
        session,
        "kernel_observation_sets",
        packed.draw_ids(session, OBSERVATION_IDS, count),
        count,
        {
            "tenant": scope.tenant,
            "profile": scope.profile,
            "contention": scope.contention,
            "run_id": str(run_id),
            "kernels": list(kernels),
            "device_kinds": list(devices),
            "kernel": packed.pack(observations.kernel, packed.INT16),
            "device_kind": packed.pack(observations.device, packed.INT16),
            "pairs": pairs,
            "tile_size": packed.pack(observations.size, packed.INT64),
            "seconds": packed.pack(observations.seconds, packed.FLOAT64),
        },
    )
    return count


def _of(scope: Scope) -> ColumnElement[bool]:
    return (
        (KernelObservationSet.tenant == scope.tenant)
        & (KernelObservationSet.profile == scope.profile)
        & (KernelObservationSet.contention == scope.contention)
    )


def window(session: Session, scope: Scope, limit: int) -> Window:
    """The newest `limit` observations of the scope, as of now."""
    newest, total = session.execute(
        select(
            func.coalesce(func.max(KernelObservationSet.last_id), 0),
            func.coalesce(func.sum(KernelObservationSet.count), 0),
        ).where(_of(scope))
    ).one()
    return Window(int(newest), min(int(total), limit))


def observations_in(session: Session, scope: Scope, of: Window) -> Observations:
    """The observations of the window, oldest first."""
    sets = session.scalars(
        select(KernelObservationSet)
        .where(_of(scope), KernelObservationSet.first_id <= of.newest)
        .order_by(KernelObservationSet.last_id.desc())
        .execution_options(yield_per=64)
    )
    gathered = packed.gather(packed.newest(sets, of.count, upper=of.newest), _observed_columns)
    if gathered is None:
        empty = np.zeros(0, dtype=object)
        return Observations(empty, np.zeros(0, dtype=np.int64), empty, np.zeros(0))
    _, kernel, size, device, seconds = gathered
    return Observations(kernel, size, device, seconds)


def _observed_columns(observed: KernelObservationSet) -> tuple[np.ndarray, ...]:
    """A set's observations: kernel name, tile size, device kind, seconds (one per item)."""
    kernels = np.array(observed.kernels, dtype=object)
    devices = np.array(observed.device_kinds, dtype=object)
    return (
        kernels[packed.unpack(observed.kernel, packed.INT16)],
        packed.unpack(observed.tile_size, packed.INT64),
        devices[packed.unpack(observed.device_kind, packed.INT16)],
        packed.unpack(observed.seconds, packed.FLOAT64),
    )


def observation_count(session: Session, run_id: uuid.UUID) -> int:
    query = select(func.coalesce(func.sum(KernelObservationSet.count), 0))
    return int(session.scalar(query.where(KernelObservationSet.run_id == run_id)) or 0)


def _fits_of(scope: Scope, model: str) -> ColumnElement[bool]:
    return (
        (KernelModelFit.tenant == scope.tenant)
        & (KernelModelFit.profile == scope.profile)
        & (KernelModelFit.contention == scope.contention)
        & (KernelModelFit.model == model)
    )


def fit_on(session: Session, scope: Scope, model: str, of: Window) -> KernelModelFit | None:
    """The fit of `model` made on exactly the window's observations, if there is one."""
    query = select(KernelModelFit).where(
        _fits_of(scope, model),
        KernelModelFit.newest_observation_id == of.newest,
        KernelModelFit.observation_count == of.count,
    )
    return session.scalars(query).one_or_none()


def newest_fit(session: Session, scope: Scope, model: str) -> KernelModelFit | None:
    """The scope's latest version of `model`, if it has one."""
    query = select(KernelModelFit).where(_fits_of(scope, model))
    return session.scalars(query.order_by(KernelModelFit.version.desc()).limit(1)).one_or_none()


def observations_after(session: Session, scope: Scope, newest: int) -> int:
    """How many of the scope's observations are newer than the one with id `newest`: the sets
    wholly newer are counted in the database; only those it falls inside are read."""
    model = KernelObservationSet
    newer = select(func.coalesce(func.sum(model.count), 0)).where(
        _of(scope), model.first_id > newest
    )
    straddling = (
        select(model)
        .options(load_only(model.ids, model.count, model.first_id, model.last_id))
        .where(_of(scope), model.first_id <= newest, model.last_id > newest)
    )
    inside = packed.count_above(list(session.scalars(straddling)), newest)
    return int(session.scalar(newer) or 0) + inside


def fit_version(session: Session, scope: Scope, model: str, version: int) -> KernelModelFit | None:
    query = select(KernelModelFit).where(_fits_of(scope, model), KernelModelFit.version == version)
    return session.scalars(query).one_or_none()


def add_fit(session: Session, scope: Scope, model: str, **fields: Any) -> KernelModelFit:
    """Insert the scope's next version of `model`; an IntegrityError at the flush if another
    worker stored the same version, or a fit on the same window, first."""
    latest = session.scalar(select(func.max(KernelModelFit.version)).where(_fits_of(scope, model)))
    fit = KernelModelFit(
        tenant=scope.tenant,
        profile=scope.profile,
        contention=scope.contention,
        model=model,
        version=(latest or 0) + 1,
        **fields,
    )
    session.add(fit)
    session.flush()
    return fit


def list_fits(
    session: Session, tenant: str | None, limit: int, offset: int
) -> tuple[list[KernelModelFit], int]:
    """The fits of `tenant` (None: everyone's), newest first; artifacts not loaded."""
    visible = true() if tenant is None else KernelModelFit.tenant == tenant
    total = session.scalar(select(func.count()).select_from(KernelModelFit).where(visible)) or 0
    fits = session.scalars(
        select(KernelModelFit)
        .options(defer(KernelModelFit.artifact, raiseload=True))
        .where(visible)
        .order_by(KernelModelFit.fitted_at.desc(), KernelModelFit.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(fits), total


def latest_fits(session: Session, tenant: str | None) -> list[KernelModelFit]:
    """The newest version of each (tenant, profile, contention, model), ordered by them."""
    key = (
        KernelModelFit.tenant,
        KernelModelFit.profile,
        KernelModelFit.contention,
        KernelModelFit.model,
    )
    newest = (
        select(*key, func.max(KernelModelFit.version).label("version")).group_by(*key)
    ).subquery()
    query = select(KernelModelFit).join(
        newest,
        (KernelModelFit.tenant == newest.c.tenant)
        & (KernelModelFit.profile == newest.c.profile)
        & (KernelModelFit.contention == newest.c.contention)
        & (KernelModelFit.model == newest.c.model)
        & (KernelModelFit.version == newest.c.version),
    )
    if tenant is not None:
        query = query.where(KernelModelFit.tenant == tenant)
    return list(session.scalars(query.order_by(*key)))


def observed_kernels(session: Session, scope: Scope) -> list[tuple[str, str]]:
    """The (kernel, device kind) pairs the scope has observations of, sorted."""
    pair = func.unnest(KernelObservationSet.pairs)
    query = select(pair.label("pair")).where(_of(scope)).distinct()
    found = sorted(row.pair.split(" ", 1) for row in session.execute(query))
    return [(kernel, device) for kernel, device in found]
