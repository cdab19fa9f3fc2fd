"""`hms simulate`: the local CLI and its JSON contract (no servers)."""

import json
from pathlib import Path

from click.testing import CliRunner

from app.cli import main
from tests.conftest import EXAMPLE_SPEC

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RESULT_FIELDS = {
    "policy", "makespan", "mean_flow_time", "p95_flow_time", "energy", "cost",
    "mean_utilization", "utilization", "slr", "speedup", "gap_to_oracle",
}  # fmt: skip


def hms(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_spec_json_prints_only_the_results_document(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**EXAMPLE_SPEC, "policies": ["greedy", "heft", "oracle"]}))
    result = hms("simulate", "--spec", str(spec), "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)  # nothing else on stdout
    assert list(document) == ["results"]
    rows = document["results"]
    assert all(set(r) == RESULT_FIELDS for r in rows)
    assert [r["makespan"] for r in rows] == sorted(r["makespan"] for r in rows)
    assert {r["policy"]: r["gap_to_oracle"] for r in rows}["oracle"] == 0.0


def test_the_same_spec_gives_the_same_json_twice(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**EXAMPLE_SPEC, "policies": ["random", "rl", "learned"]}))
    assert (
        hms("simulate", "--spec", str(spec), "--json").stdout
        == hms("simulate", "--spec", str(spec), "--json").stdout
    )


def test_a_spec_path_is_read_relative_to_the_spec_file(tmp_path):
    (tmp_path / "graphs").mkdir()
    (tmp_path / "graphs" / "g.stg").write_text((FIXTURES / "stg" / "six_tasks.stg").read_text())
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"workload": {"kind": "stg", "path": "graphs/g.stg"}, "policies": ["heft"]})
    )
    result = hms("simulate", "--spec", str(spec), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["policy"] == "heft"


def test_flags_leaderboard_and_schedule_csv(tmp_path):
    out = tmp_path / "schedule.csv"
    montage = str(FIXTURES / "wfcommons" / "montage.json")
    result = hms(
        "simulate",
        "--workload",
        "wfcommons",
        "--file",
        montage,
        "--policies",
        "heft,eft",
        "--schedule",
        str(out),
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["#", "policy", "makespan"]
    assert {line.split()[1] for line in lines[2:4]} == {"heft", "eft"}
    rows = out.read_text().splitlines()
    assert rows[0] == "policy,task,device,partner,gpu_fraction,start,end"
    assert len(rows) == 1 + 2 * 58  # montage fixture: 58 tasks, two policies


def test_rl_state_persists_between_local_runs(tmp_path):
    state = tmp_path / "rl.json"
    hms("simulate", "--tasks", "300", "--policies", "rl", "--rl-state", str(state))
    first = json.loads(state.read_text())
    hms("simulate", "--tasks", "300", "--policies", "rl", "--rl-state", str(state))
    assert json.loads(state.read_text())["steps"] == first["steps"] + 300


def test_bad_input_is_a_usage_error_naming_the_field(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**EXAMPLE_SPEC, "policies": ["teleport"]}))
    result = hms("simulate", "--spec", str(spec), "--json")
    assert result.exit_code == 2 and "policies.0" in result.stderr and result.stdout == ""
    cyclic = {
        "workload": {"kind": "explicit", "compute": [[1], [1]], "edges": [[0, 1, 1], [1, 0, 1]]},
        "policies": ["heft"],
    }
    spec.write_text(json.dumps(cyclic))
    result = hms("simulate", "--spec", str(spec), "--json")
    assert result.exit_code == 1 and "cycle" in result.stderr
