"""`hms`, the command-line client: start the system locally (`hms up`), run the core without a
server (`hms simulate`), and talk to the API (runs, studies, models, policies, keys)."""

from __future__ import annotations

import sys

import click

from app.cli import keys, models, runs, study
from app.cli.policies import policies
from app.cli.profile import profile_group
from app.cli.simulate import simulate
from app.devstack.launcher import up as launch


@click.group()
def main() -> None:
    """Hybrid ML Scheduler: compare placement policies on CPU/GPU clusters."""


@main.command()
def up() -> None:
    """Start PostgreSQL, Valkey, the API, a worker, beat and Flower (Ctrl-C stops all)."""
    sys.exit(launch())


for command in (
    simulate,
    *runs.COMMANDS,
    models.models,
    models.retrain,
    policies,
    keys.keys_group,
    study.study_group,
    profile_group,
):
    main.add_command(command)
