"""`hms simulate`: run the core locally, no server, and print the leaderboard."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from app.cli import tables
from app.errors import InvalidSpec
from app.profilespec import ProfileSpec
from app.runspec import ProfileLookup, RunSpec, checked_profile, kernel_profile
from app.runtime.threads import limit_native_threads
from app.services.schedule_export import schedule_csv
from app.services.simulation import Simulation, result_documents, simulate_spec
from app.sim.policies import POLICY_NAMES
from app.sim.profile import Profile


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


def validated(document: dict[str, Any], profiles: ProfileLookup = kernel_profile) -> RunSpec:
    """The spec, with the kernel profile it names checked: locally the shipped profiles and a
    `--kernel-profile` file exist (a tenant's uploads live on the server)."""
    try:
        spec = RunSpec.model_validate(document)
        checked_profile(spec, profiles)
        return spec
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        raise click.UsageError(f"invalid spec: {problems}") from exc


class ProgressBar:
    """One line on stderr, redrawn; silent when stderr is not a terminal."""

    WIDTH = 30

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def __call__(self, fraction: float, stage: str) -> None:
        if self.enabled:
            filled = int(fraction * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            sys.stderr.write(f"\r[{bar}] {fraction:6.1%} {stage:<30}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def with_profile_file(
    document: dict[str, Any], profile_file: Path | None
) -> tuple[dict[str, Any], ProfileLookup]:
    """The document naming the kernel profile in `profile_file` (as `hms profile measure` writes
    it) in its cluster, and the profiles a local run may name: the shipped ones and that one."""
    if profile_file is None:
        return document, kernel_profile
    try:
        local = ProfileSpec.model_validate(json.loads(profile_file.read_text()))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise click.UsageError(f"invalid kernel profile {profile_file}: {exc}") from exc
    profile = local.to_profile()

    def profiles(name: str) -> Profile:
        return profile if name == local.name else kernel_profile(name)

    cluster = {**(document.get("cluster") or {}), "profile": local.name}
    return {**document, "cluster": cluster}, profiles


def run_locally(
    spec: RunSpec, rl_state_file: Path | None, profiles: ProfileLookup = kernel_profile
) -> Simulation:
    rl_state = None
    if rl_state_file is not None and rl_state_file.exists():
        rl_state = json.loads(rl_state_file.read_text())
    limit_native_threads()  # a share of the cores, whatever else runs beside it
    bar = ProgressBar()
    try:
        simulation = simulate_spec(spec, bar, rl_state, profiles=profiles)
    except InvalidSpec as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        bar.close()
    if rl_state_file is not None:
        for outcome in simulation.outcomes:
            if outcome.learned_state is not None:
                rl_state_file.write_text(json.dumps(outcome.learned_state))
    return simulation


def leaderboard(simulation: Simulation) -> str:
    """A text table in the outcomes' order (best first by the run's rank metric), the rank
    metric leading after the policy."""
    return tables.leaderboard(result_documents(simulation), simulation.rank_by)


def write_schedules(simulation: Simulation, path: Path) -> None:
    devices = simulation.problem.cluster.names()
    parts = []
    for index, outcome in enumerate(simulation.outcomes):
        text = schedule_csv(devices, outcome.schedule, policy=outcome.policy)
        parts.append(text if index == 0 else text.split("\n", 1)[1])
    path.write_text("".join(parts))


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
@click.option("--policies", default=",".join(POLICY_NAMES), show_default=True)
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
    if spec_file is not None:
        document = with_flag_fields(load_spec(spec_file), options)
    else:
        document = spec_from_flags(options)
    document, profiles = with_profile_file(document, kernel_profile_file)
    spec = validated(document, profiles)
    simulation = run_locally(spec, rl_state_file, profiles)
    if schedule_file is not None:
        write_schedules(simulation, schedule_file)
    if as_json:
        click.echo(json.dumps({"results": result_documents(simulation)}))
    else:
        click.echo(leaderboard(simulation))
        click.echo(f"\nranked by {simulation.rank_by} (lower is better)")
        if simulation.model_version:
            click.echo(f"\nlearned used performance model {simulation.model_version}")
