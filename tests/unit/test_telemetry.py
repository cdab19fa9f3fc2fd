"""The pure parts of the API's and workers' telemetry: request ids, route labels, queue keys,
task-count buckets."""

import pytest

from api.metrics import UNMATCHED
from api.telemetry import request_id_from, route_template
from api.web.broker import QUEUES, STEPS, step_key
from celeryconfig import broker_priority
from workers.metrics import task_bucket


@pytest.mark.parametrize("given", ["abc-123", "0f" * 16, "trace:span/1@edge", "a" * 128])
def test_a_sane_request_id_is_kept(given):
    assert request_id_from([(b"x-request-id", given.encode())]) == given


@pytest.mark.parametrize("given", ["", "a b", 'a"b', "a\nb", "-leading", "a" * 129, "é"])
def test_anything_else_gets_a_new_request_id(given):
    generated = request_id_from([(b"x-request-id", given.encode())])
    assert generated != given and len(generated) == 32
    assert request_id_from([]) != request_id_from([])


def test_the_route_label_is_the_matched_path_format_or_unmatched():
    class Route:
        path_format = "/api/v1/runs/{run_id}"

    assert route_template({"route": Route()}) == "/api/v1/runs/{run_id}"
    assert route_template({}) == UNMATCHED


def test_queue_keys_follow_kombus_priority_lists():
    # The API's priority 9 is the broker's step 0, the list named like the queue.
    assert step_key("simulations", broker_priority(9)) == "simulations"
    assert step_key("simulations", broker_priority(5)) == "simulations:4"
    assert step_key("training", broker_priority(0)) == "training:9"
    keys = [step_key(queue, step) for queue in QUEUES for step in STEPS]
    assert len(keys) == 20 and len(set(keys)) == 20


@pytest.mark.parametrize(
    ("tasks", "bucket"),
    [(1, "1k"), (1000, "1k"), (1001, "10k"), (100_000, "100k"), (1_000_000, "1M"),
     (1_000_001, "more"), (None, "imported")],
)  # fmt: skip
def test_runs_are_bucketed_by_task_count(tasks, bucket):
    assert task_bucket(tasks) == bucket
