"""`hms simulate`: the local CLI and its JSON contract (no servers)."""

import json
import re
from importlib import resources
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from app.cli.main import main
from tests.conftest import EXAMPLE_SPEC

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RESULT_FIELDS = {
    "policy", "rank", "rank_by", "rank_value", "makespan", "mean_flow_time", "p95_flow_time",
    "mean_slowdown", "energy", "cost", "mean_utilization", "utilization", "slr", "speedup",
    "lower_bound", "gap_to_bound", "gap_to_oracle",
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
    assert [r["rank"] for r in rows] == [1, 2, 3]
    # An online workload: ranked by mean flow time unless the spec says otherwise.
    assert all(r["rank_by"] == "mean_flow_time" for r in rows)
    assert all(r["rank_value"] == r["mean_flow_time"] for r in rows)
    assert [r["rank_value"] for r in rows] == sorted(r["rank_value"] for r in rows)
    assert all(r["mean_slowdown"] >= 1 - 1e-9 and r["lower_bound"] > 0 for r in rows)
    assert all(
        r["gap_to_bound"] == pytest.approx((r["makespan"] - r["lower_bound"]) / r["lower_bound"])
        for r in rows
    )
    assert {r["policy"]: r["gap_to_oracle"] for r in rows}["oracle"] == 0.0


def test_json_results_are_sorted_by_the_metric_the_spec_names(tmp_path):
    spec = tmp_path / "spec.json"
    body = {**EXAMPLE_SPEC, "policies": ["round_robin", "greedy", "heft"], "rank_by": "energy"}
    spec.write_text(json.dumps(body))
    rows = json.loads(hms("simulate", "--spec", str(spec), "--json").stdout)["results"]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert all(r["rank_by"] == "energy" and r["rank_value"] == r["energy"] for r in rows)
    assert [r["energy"] for r in rows] == sorted(r["energy"] for r in rows)


def test_knowledge_and_rank_by_flags_override_the_spec_file(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**EXAMPLE_SPEC, "policies": ["heft", "oracle"]}))

    def flows(*flags: str) -> dict[str, float]:
        out = hms("simulate", "--spec", str(spec), "--json", *flags).stdout
        return {r["policy"]: r["mean_flow_time"] for r in json.loads(out)["results"]}

    estimated, clairvoyant = flows(), flows("--knowledge", "clairvoyant")
    # Oracle sees the truth either way; heft decides on it only when clairvoyant.
    assert clairvoyant["oracle"] == estimated["oracle"]
    assert clairvoyant["heft"] < estimated["heft"]
    rows = json.loads(hms("simulate", "--spec", str(spec), "--json", "--rank-by", "cost").stdout)
    assert {r["rank_by"] for r in rows["results"]} == {"cost"}


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


def test_the_leaderboard_leads_with_the_rank_metric_in_rank_order():
    result = hms("simulate", "--tasks", "300", "--policies", "round_robin,greedy,heft")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["#", "policy", "mean", "flow"]  # an online workload
    assert "slowdown" in lines[0] and "vs bound" in lines[0]
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "3"]
    assert "ranked by mean_flow_time" in result.stdout
    by_energy = hms(
        "simulate", "--tasks", "300", "--policies", "greedy,heft", "--rank-by", "energy"
    )
    assert by_energy.stdout.splitlines()[0].split()[:3] == ["#", "policy", "energy"]


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


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"knowledge": "psychic"}, ["knowledge"]),
        ({"rank_by": "vibes"}, ["rank_by"]),
        ({"cluster": {"cpus": 2, "gpus": 1, "profile": "nope"}}, ["cluster.profile"]),
        (
            {"workload": {"kind": "synthetic", "num_tasks": 100, "load": 0.5, "arrival_rate": 9}},
            ["load", "arrival_rate"],
        ),
    ],
)
def test_an_invalid_ranking_knowledge_or_load_exits_2_naming_the_field(tmp_path, change, fields):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**EXAMPLE_SPEC, **change}))
    result = hms("simulate", "--spec", str(spec), "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert all(re.search(rf"\b{field}\b", result.stderr) for field in fields), result.stderr


def test_knowledge_flag_is_validated_by_the_spec():
    flags = ("simulate", "--tasks", "100", "--policies", "greedy", "--knowledge")
    assert hms(*flags, "clairvoyant").exit_code == 0
    result = hms(*flags, "psychic")
    assert result.exit_code == 2 and "knowledge" in result.stderr


def test_a_kernel_profile_file_is_the_truth_of_a_local_run(tmp_path):
    shipped = resources.files("app.profiles").joinpath("epyc-2c-vm-2026-12.json").read_text()
    profile = tmp_path / "mine.json"
    profile.write_text(json.dumps({**json.loads(shipped), "name": "my-laptop"}))
    flags = ["simulate", "--tasks", "300", "--policies", "eft,oracle", "--json"]
    flags += ["--kernel-profile", str(profile)]
    result = CliRunner().invoke(main, [*flags, "--cpus", "2", "--gpus", "0"])
    assert result.exit_code == 0, result.output
    assert {row["policy"] for row in json.loads(result.stdout)["results"]} == {"eft", "oracle"}
    # It measured cores only: a cluster with a GPU is refused, naming the field.
    refused = CliRunner().invoke(main, [*flags, "--cpus", "2", "--gpus", "1"])
    assert refused.exit_code == 2 and "cluster.profile" in refused.output
    assert "my-laptop" in refused.output
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**json.loads(shipped), "schema_version": 9}))
    invalid = CliRunner().invoke(main, ["simulate", "--kernel-profile", str(broken)])
    assert invalid.exit_code == 2 and "schema_version" in invalid.output


def test_perf_model_flag_is_validated_by_the_spec():
    flags = ("simulate", "--tasks", "100", "--policies", "greedy", "--perf-model")
    assert hms(*flags, "exact").exit_code == 0
    result = hms(*flags, "oracle")
    assert result.exit_code == 2 and "perf_model" in result.stderr


def test_the_policies_default_is_every_policy_and_the_help_names_them():
    from app.cli.simulate import simulate
    from app.sim.policies import POLICY_NAMES

    option = next(p for p in simulate.params if p.name == "policies")
    with click.Context(simulate) as ctx:
        assert option.get_default(ctx) == ",".join(POLICY_NAMES)  # read when it runs
    shown = "".join(hms("simulate", "--help").stdout.split())  # help wraps the list
    assert f"[default:{','.join(POLICY_NAMES)}]" in shown
