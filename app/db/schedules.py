"""Stored per-task schedules: numpy arrays in a compressed .npz, read back without pickle; and
the digests of those recomputed on read."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import RunResult, RunSchedule
from app.sim.schedule import ARRAYS, Schedule


@dataclass(frozen=True)
class PackedSchedule:
    """A schedule ready to store: packing is the slow part (0.7 s for 200k tasks), done before
    the transaction that stores it."""

    num_tasks: int
    arrays: bytes  # pack()'s


def packed(schedule: Schedule) -> PackedSchedule:
    return PackedSchedule(schedule.num_tasks, pack(schedule))


def pack(schedule: Schedule) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{field: getattr(schedule, field) for field in ARRAYS})
    return buffer.getvalue()


def unpack(data: bytes) -> Schedule:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return Schedule(**{field: arrays[field] for field in ARRAYS})


def add_schedule(
    session: Session, run_id: uuid.UUID, policy: str, devices: list[str], packed: PackedSchedule
) -> None:
    session.add(
        RunSchedule(
            run_id=run_id,
            policy=policy,
            num_tasks=packed.num_tasks,
            devices=devices,
            arrays=packed.arrays,
        )
    )


def get_schedule(session: Session, run_id: uuid.UUID, policy: str) -> RunSchedule | None:
    return session.get(RunSchedule, (run_id, policy))


def stored_policies(session: Session, run_id: uuid.UUID) -> list[str]:
    return list(session.scalars(select(RunSchedule.policy).where(RunSchedule.run_id == run_id)))


def digests(session: Session, run_id: uuid.UUID) -> dict[str, str]:
    """The run's schedule digests by policy (results recorded before digests have none)."""
    query = select(RunResult.policy, RunResult.schedule_digest).where(RunResult.run_id == run_id)
    return {policy: digest for policy, digest in session.execute(query) if digest is not None}
