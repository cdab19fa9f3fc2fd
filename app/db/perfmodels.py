"""Query functions of the kernel performance models: the observations runs record, the fits
made on them. They take the caller's session and never commit. Every query names the tenant:
one tenant's observations never teach another's models."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session, defer

from app.db.bulk import copy_columns
from app.db.models import KernelModelFit, KernelObservation
from app.ml.perfmodels import Observations

OBSERVATION_COLUMNS = (
    "tenant",
    "profile",
    "contention",
    "run_id",
    "kernel",
    "tile_size",
    "device_kind",
    "seconds",
)


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
    session: Session, scope: Scope, run_id: uuid.UUID, observations: Observations
) -> int:
    """Insert them with COPY (bulk.py), column by column, in the caller's transaction."""
    columns = (
        scope.tenant,
        scope.profile,
        scope.contention,
        run_id,
        observations.kernel,
        observations.size,
        observations.device,
        observations.seconds,
    )
    return copy_columns(
        session, "kernel_observations", dict(zip(OBSERVATION_COLUMNS, columns, strict=True))
    )


def _of(scope: Scope) -> ColumnElement[bool]:
    return (
        (KernelObservation.tenant == scope.tenant)
        & (KernelObservation.profile == scope.profile)
        & (KernelObservation.contention == scope.contention)
    )


def window(session: Session, scope: Scope, limit: int) -> Window:
    """The newest `limit` observations of the scope, as of now."""
    newest = session.scalar(select(func.max(KernelObservation.id)).where(_of(scope))) or 0
    total = session.scalar(select(func.count()).select_from(KernelObservation).where(_of(scope)))
    return Window(int(newest), min(int(total or 0), limit))


def observations_in(session: Session, scope: Scope, of: Window) -> Observations:
    """The observations of the window, oldest first."""
    rows = session.execute(
        select(
            KernelObservation.kernel,
            KernelObservation.tile_size,
            KernelObservation.device_kind,
            KernelObservation.seconds,
        )
        .where(_of(scope), KernelObservation.id <= of.newest)
        .order_by(KernelObservation.id.desc())
        .limit(of.count)
    ).all()[::-1]
    return Observations(
        np.array([row.kernel for row in rows], dtype=object),
        np.array([row.tile_size for row in rows], dtype=np.int64),
        np.array([row.device_kind for row in rows], dtype=object),
        np.array([row.seconds for row in rows], dtype=np.float64),
    )


def observation_count(session: Session, run_id: uuid.UUID) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(KernelObservation)
            .where(KernelObservation.run_id == run_id)
        )
        or 0
    )


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
    """How many of the scope's observations are newer than the one with id `newest`."""
    query = select(func.count()).select_from(KernelObservation)
    return int(session.scalar(query.where(_of(scope), KernelObservation.id > newest)) or 0)


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
    query = (
        select(KernelObservation.kernel, KernelObservation.device_kind)
        .where(_of(scope))
        .distinct()
        .order_by(KernelObservation.kernel, KernelObservation.device_kind)
    )
    return [(row.kernel, row.device_kind) for row in session.execute(query)]
