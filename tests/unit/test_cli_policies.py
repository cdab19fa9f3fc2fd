"""`hms policies`' table, from the documents `GET /api/v1/policies` gives (one per registered
policy); the command against a real API: tests/integration/test_cli.py."""

from app.cli.tables import policy_list
from app.sim.policies import REGISTRY


def test_the_table_shows_what_each_policy_does_and_what_it_decides_on():
    documents = [
        {"name": name, "summary": policy.summary, "knows": policy.knows}
        for name, policy in REGISTRY.items()
    ]
    lines = policy_list(documents).splitlines()
    assert [line.split()[0] for line in lines[::2]] == list(REGISTRY)
    olb = lines.index(next(line for line in lines if line.startswith("olb ")))
    assert "Braun et al. 2001" in lines[olb]
    assert lines[olb + 1].split("decides on: ")[1] == REGISTRY["olb"].knows
