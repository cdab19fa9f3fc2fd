"""The one fake of the outside world the services see: a queue that sends nothing.

Integration tests call the services in-process against the real database; where a test needs a
real broker and real workers it uses workers.queue.CeleryQueue instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cache

from sqlalchemy import Engine, Select, create_engine, select
from sqlalchemy.pool import NullPool

from app.db.models import Run, Study, TrainingJob
from app.errors import TransientStoreError
from app.settings import get_settings


class RecordingQueue:
    """Every queue port (RunQueue, StudyQueue, RetrainQueue: a WorkQueue) without a broker: it
    records what it is asked to send, in order, and sends nothing.

    For each single message it also records, in `committed`, whether what the message names (the
    run, the study's runs, the retrain job) was visible from another database connection when it
    was asked: only committed rows are, so a service that enqueues before its commit shows up as
    False.

    With `broker_down`, every send and `ping` raise TransientStoreError, as CeleryQueue does
    when the broker cannot be reached: what a crash between the commit and the enqueue looks like
    from the database's side.
    """

    def __init__(self, *, broker_down: bool = False) -> None:
        self.broker_down = broker_down
        self.runs: list[uuid.UUID] = []  # by enqueue_run and enqueue_run_groups
        self.groups: list[list[uuid.UUID]] = []  # by enqueue_run_groups: a message each
        self.priority: dict[uuid.UUID, int] = {}
        self.fan_outs: list[uuid.UUID] = []
        self.retrains: list[uuid.UUID] = []
        self.purges: list[uuid.UUID] = []
        self.revoked: list[uuid.UUID] = []
        self.committed: dict[uuid.UUID, bool] = {}
        #: What `messages_held` answers: none of the messages it was asked to send (it sends
        #: nothing), unless a test says the broker holds some.
        self.held = 0

    def messages_held(self) -> int:
        self._reach_broker()
        return self.held

    def enqueue_run(self, run_id: uuid.UUID, priority: int) -> None:
        self._reach_broker()
        self.committed[run_id] = _visible(select(Run.id).where(Run.id == run_id))
        self.runs.append(run_id)
        self.priority[run_id] = priority

    def enqueue_run_groups(self, groups: Sequence[Sequence[uuid.UUID]], priority: int) -> None:
        self._reach_broker()
        self.groups.extend(list(group) for group in groups)
        for run_ids in groups:
            self.runs.extend(run_ids)
            self.priority.update(dict.fromkeys(run_ids, priority))

    def enqueue_fan_out(self, study_id: uuid.UUID) -> None:
        self._reach_broker()
        self.committed[study_id] = _visible(select(Study.id).where(Study.id == study_id))
        self.fan_outs.append(study_id)

    def enqueue_purge(self, study_id: uuid.UUID) -> None:
        self._reach_broker()
        self.purges.append(study_id)

    def enqueue_retrain(self, job_id: uuid.UUID) -> None:
        self._reach_broker()
        self.committed[job_id] = _visible(select(TrainingJob.id).where(TrainingJob.id == job_id))
        self.retrains.append(job_id)

    def revoke_run(self, run_id: uuid.UUID) -> None:
        self.revoked.append(run_id)

    def ping(self) -> None:
        self._reach_broker()

    def _reach_broker(self) -> None:
        if self.broker_down:
            raise TransientStoreError("broker", "Connection refused")


def _visible(query: Select[uuid.UUID]) -> bool:
    with _observer().connect() as connection:
        return connection.execute(query.limit(1)).first() is not None


@cache
def _observer() -> Engine:
    """An engine apart from the application's pool, so that what it sees is committed; NullPool:
    it holds no connection between looks (nothing to dispose of after a test)."""
    return create_engine(get_settings().require_database_url(), poolclass=NullPool)
