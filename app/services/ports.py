"""What the use cases need from the outside world, as protocols the adapters implement
(workers/queue.py implements RunQueue with Celery)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol


class RunQueue(Protocol):
    def enqueue_run(self, run_id: uuid.UUID, priority: int) -> None:
        """Send the run to a worker. `priority` is the API's: 0..9, 9 the most urgent.
        Raises TransientStoreError if the broker cannot be reached."""

    def revoke_run(self, run_id: uuid.UUID) -> None:
        """Tell workers to drop the run's message if it has not started (best effort)."""

    def ping(self) -> None:
        """Raise TransientStoreError unless the broker answers."""


class StudyQueue(Protocol):
    def enqueue_fan_out(self, study_id: uuid.UUID) -> None:
        """Send the one message that makes a worker send the study's runs."""

    def enqueue_run_groups(self, groups: Sequence[Sequence[uuid.UUID]], priority: int) -> None:
        """Send many runs at once (one connection), each group of runs in one message that
        executes them one after the other; as enqueue_run otherwise."""

    def enqueue_purge(self, study_id: uuid.UUID) -> None:
        """Send the message that makes a worker delete a deleted study's rows (purge_study).
        Raises TransientStoreError if the broker cannot be reached."""


class RetrainQueue(Protocol):
    def enqueue_retrain(self, job_id: uuid.UUID) -> None:
        """Send a retraining job to a worker (the `training` queue)."""


class WorkQueue(RunQueue, RetrainQueue, StudyQueue, Protocol):
    """Both: what the recovery sweep sends work through."""

    def messages_held(self) -> int:
        """How many messages the broker holds for workers: waiting in the work queues, or
        delivered to a worker and not yet acknowledged. Raises TransientStoreError if the broker
        cannot be reached."""


class ProgressSink(Protocol):
    def __call__(self, progress: float, stage: str) -> None:
        """Publish progress in [0, 1] of the current stage (e.g. the policy being simulated)."""
