"""Which policies' schedules a run stores: those its spec and seed do not determine."""

import pytest

from app.runspec import RunSpec
from app.services.schedules import stored_policies

POLICIES = ["greedy", "heft", "learned", "rl", "dmda", "heteroprio"]


def spec(policies):
    return RunSpec.model_validate(
        {"workload": {"kind": "synthetic", "num_tasks": 100}, "policies": policies}
    )


@pytest.mark.parametrize(
    ("warm_rl", "fitted", "stored"),
    [
        (False, False, {"learned"}),
        (True, False, {"learned", "rl"}),
        (False, True, {"learned", "dmda", "heteroprio"}),
    ],
)
def test_policies_deciding_on_state_outside_the_spec_are_stored(warm_rl, fitted, stored):
    assert stored_policies(spec(POLICIES), warm_rl, fitted) == stored


def test_a_run_of_policies_that_decide_on_the_spec_alone_stores_none():
    assert stored_policies(spec(["greedy", "heft", "oracle"]), True, True) == set()
