"""`hms simulate`'s run in this process: the spec validated (its kernel profile found), every
policy simulated with a progress bar on stderr, and the leaderboard shown.

The command (app/cli/simulate.py) imports this module when it runs: the RunSpec (pydantic), the
engine (numba) and the services load then, not whenever `hms` starts."""

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
from app.sim.profile import Profile


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


def show(simulation: Simulation, as_json: bool) -> None:
    """The leaderboard, the rank metric and the model `learned` used; with `as_json` only
    `{"results": [...]}` (docs/cli.md: a contract for scripts)."""
    if as_json:
        click.echo(json.dumps({"results": result_documents(simulation)}))
        return
    click.echo(leaderboard(simulation))
    click.echo(f"\nranked by {simulation.rank_by} (lower is better)")
    if simulation.model_version:
        click.echo(f"\nlearned used performance model {simulation.model_version}")
