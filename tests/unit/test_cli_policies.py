"""`hms policies`' table, from the documents `GET /api/v1/policies` gives (one per registered
policy); the command against a real API: tests/integration/test_cli.py."""

from app.cli.tables import policy_list
from app.sim.policies import REGISTRY


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
