"""`hms policies`' table, from the documents `GET /api/v1/policies` gives (one per registered
policy); the command against a real API: tests/integration/test_cli.py."""

from app.cli.tables import kernel_model_list, policy_list
from app.runspec import PERF_MODEL_NAMES
from app.sim.policies import REGISTRY
from app.sim.policies.runtime import KERNEL_MODELS


def test_the_table_shows_what_each_policy_does_what_it_decides_on_and_its_paper():
    documents = [
        {"name": name, "summary": policy.summary, "knows": policy.knows, "paper": policy.paper}
        for name, policy in REGISTRY.items()
    ]
    lines = policy_list(documents).splitlines()
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == list(REGISTRY)
    olb = lines.index(next(line for line in lines if line.startswith("olb ")))
    assert "Braun et al. 2001" in lines[olb]
    assert lines[olb + 1].split("decides on: ")[1] == REGISTRY["olb"].knows
    assert lines[olb + 2].split("paper: ")[1] == REGISTRY["olb"].paper
    # A policy of this project's own cites no paper: no paper line follows it.
    rl = lines.index(next(line for line in lines if line.startswith("rl ")))
    assert not lines[rl + 2].lstrip().startswith("paper:")


def test_every_literature_policy_cites_its_paper():
    own = {"round_robin", "random", "cpu_only", "gpu_only", "learned", "rl", "oracle"}
    for name, policy in REGISTRY.items():
        assert (policy.paper is None) == (name in own), name


def test_the_models_table_shows_what_each_model_predicts_and_its_paper():
    documents = [
        {"name": name, "summary": summary, "paper": paper}
        for name, (summary, paper) in KERNEL_MODELS.items()
    ]
    lines = kernel_model_list(documents).splitlines()
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == list(KERNEL_MODELS)
    history = lines.index(next(line for line in lines if line.startswith("history ")))
    assert "Augonnet" in lines[history + 1] and lines[history + 1].lstrip().startswith("paper:")
    assert list(KERNEL_MODELS) == list(PERF_MODEL_NAMES)  # every name a spec accepts, once
