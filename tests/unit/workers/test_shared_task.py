"""The worker's task for a message of several runs (workers/tasks.run_simulations), around the
service (services/runs.execute_runs, replaced here by a fake: the integration and e2e tests run
the real one): each run's log lines and progress name that run, the service gets the broker's
queue and the message's priority to send again the runs it did not start, and the result lists
every run."""

from __future__ import annotations

import uuid

from app.runtime.logs import LogContext, bound, current_context
from app.services.runs import ExecutionOutcome, SharedOutcome
from workers import tasks


class Queue:
    def __init__(self) -> None:
        self.sent: list[tuple[uuid.UUID, int]] = []

    def enqueue_run(self, run_id: uuid.UUID, priority: int) -> None:
        self.sent.append((run_id, priority))


def test_each_run_is_named_in_the_log_context_and_the_rest_sent_again(monkeypatch):
    run_ids = [uuid.uuid4() for _ in range(4)]
    logged: list[str | None] = []
    sinks = []

    def execute_runs(ids, sink_for, queue, priority, worker):
        assert ids == run_ids and worker == "w@host"
        for run_id in ids[:2]:  # the budget ends after two
            sinks.append(sink_for(run_id))
            logged.append(current_context().run_id)
        for run_id in ids[2:]:  # as the service does with the queue and priority it is given
            queue.enqueue_run(run_id, priority)
        executed = [
            (ids[0], ExecutionOutcome.SUCCEEDED, 0.5),
            (ids[1], ExecutionOutcome.SKIPPED, 0.01),
        ]
        return SharedOutcome(executed, ids[2:])

    queue = Queue()
    monkeypatch.setattr(tasks, "execute_runs", execute_runs)
    monkeypatch.setattr(tasks, "CeleryQueue", lambda: queue)
    tasks.run_simulations.push_request(hostname="w@host")
    try:
        with bound(LogContext(task="hms.run_simulations")):
            result = tasks.run_simulations.run([str(run_id) for run_id in run_ids], 6)
    finally:
        tasks.run_simulations.pop_request()
    assert logged == [str(run_ids[0]), str(run_ids[1])]
    assert [sink.run_id for sink in sinks] == run_ids[:2]
    assert queue.sent == [(run_ids[2], 6), (run_ids[3], 6)]
    assert result == {
        "runs": [
            {"run_id": str(run_ids[0]), "outcome": "succeeded", "seconds": 0.5},
            {"run_id": str(run_ids[1]), "outcome": "skipped", "seconds": 0.01},
        ],
        "sent_again": [str(run_ids[2]), str(run_ids[3])],
    }
