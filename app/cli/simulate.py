"""`hms simulate`: run the core locally, no server, and print the leaderboard.

Only the command's options are defined here; the run (app/cli/local_run.py) and the policy names
load when it runs, so that `hms` starts without the engine (app/cli/main.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def load_spec(spec_file: Path) -> dict[str, Any]:
    """The RunSpec JSON in `spec_file`, with a workload `path` made relative to that file."""
    try:
        document = json.loads(spec_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise click.UsageError(f"cannot read the spec {spec_file}: {exc}") from exc
    workload = document.get("workload") if isinstance(document, dict) else None
    if isinstance(workload, dict) and isinstance(workload.get("path"), str):
        workload["path"] = str((spec_file.parent / workload["path"]).resolve())
    return document


def spec_from_flags(options: dict[str, Any]) -> dict[str, Any]:
    """A RunSpec document from the command-line flags."""
    kind = options["workload"]
    workload: dict[str, Any] = {"kind": kind}
    if kind in ("synthetic", "layered_dag"):
        workload["num_tasks"] = options["tasks"]
    elif options["file"] is None:
        raise click.UsageError(f"--workload {kind} needs --file")
    else:
        workload["path"] = str(Path(options["file"]).resolve())
    cluster: dict[str, Any] = {"cpus": options["cpus"], "gpus": options["gpus"]}
    if options["profile"] is not None:
        cluster["profile"] = json.loads(Path(options["profile"]).read_text())
    document: dict[str, Any] = {
        "workload": workload,
        "cluster": cluster,
        "policies": [p.strip() for p in options["policies"].split(",") if p.strip()],
        "seed": options["seed"],
    }
    return with_flag_fields(document, options)


def with_flag_fields(document: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """`--rank-by`, `--knowledge` and `--perf-model` override the spec's fields (with --spec
    too). Given only when set, so the spec's own values or defaults apply otherwise (and RunSpec
    names a bad value's field)."""
    if not isinstance(document, dict):
        return document
    for field in ("rank_by", "knowledge", "perf_model"):
        if options[field] is not None:
            document[field] = options[field]
    return document


class EveryPolicy:
    """`--policies`' default: every policy, comma-separated. The names come from the policy
    registry, which loads the engine (numba): only when the command runs without `--policies`,
    or its help shows them, not when `hms` starts. (An object, not a function, so that click
    shows its text as the default.)"""

    def __call__(self) -> str:
        from app.sim.policies import POLICY_NAMES

        return ",".join(POLICY_NAMES)

    def __str__(self) -> str:
        return self()


@click.command()
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A RunSpec JSON file (the body of POST /api/v1/runs); overrides the flags.",
)
@click.option(
    "--workload",
    type=click.Choice(["synthetic", "layered_dag", "wfcommons", "stg"]),
    default="synthetic",
    show_default=True,
)
@click.option("--tasks", type=int, default=10_000, show_default=True, help="synthetic/layered_dag.")
@click.option("--file", type=click.Path(exists=True, dir_okay=False), help="wfcommons/stg input.")
@click.option("--cpus", type=int, default=8, show_default=True)
@click.option("--gpus", type=int, default=2, show_default=True)
@click.option(
    "--profile",
    type=click.Path(exists=True, dir_okay=False),
    help="Hardware profile JSON: profiled_sizes, cpu_times, gpu_times.",
)
@click.option(
    "--kernel-profile",
    "kernel_profile_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A kernel profile file (as hms profile measure writes it): the cluster names it, and "
    "the tasks take the times it measured (with --spec too).",
)
@click.option("--policies", default=EveryPolicy(), show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--rank-by",
    help="makespan, mean_flow_time, p95_flow_time, mean_slowdown, energy or cost "
    "(default: mean_flow_time for online workloads, makespan for static DAGs).",
)
@click.option(
    "--knowledge",
    help="estimated (default: each policy decides on what it knows) or clairvoyant (every "
    "policy decides on the true times).",
)
@click.option(
    "--perf-model",
    help="The kernel model the runtime schedulers decide with: exact (the profile's measured "
    "means) or history (default), regression, nl_regression, learned, which here, with no "
    "server's observations, are unfitted: uncalibrated everywhere, so the schedulers explore.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print only {"results": [...]} on stdout (a stable contract for scripts).',
)
@click.option(
    "--schedule",
    "schedule_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every policy's per-task placements to this CSV.",
)
@click.option(
    "--rl-state",
    "rl_state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Start rl from this JSON file if it exists; save what it learned there.",
)
def simulate(
    spec_file: Path | None,
    kernel_profile_file: Path | None,
    as_json: bool,
    schedule_file: Path | None,
    rl_state_file: Path | None,
    **options: Any,
) -> None:
    """Simulate locally (no server): compare policies on a workload and print the leaderboard."""
    from app.cli import local_run

    if spec_file is not None:
        document = with_flag_fields(load_spec(spec_file), options)
    else:
        document = spec_from_flags(options)
    document, profiles = local_run.with_profile_file(document, kernel_profile_file)
    spec = local_run.validated(document, profiles)
    simulation = local_run.run_locally(spec, rl_state_file, profiles)
    if schedule_file is not None:
        local_run.write_schedules(simulation, schedule_file)
    local_run.show(simulation, as_json)
