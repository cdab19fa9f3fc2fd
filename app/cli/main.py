"""`hms`, the command-line client: start the system locally (`hms up`), run the core without a
server (`hms simulate`), and talk to the API (runs, studies, models, policies, keys).

Every command's module is imported here, so each imports at its top only what defining its
options needs (click, the table formatting); the heavy libraries load inside the command that
uses them: the engine (numba), pydantic and the services in `hms simulate`, httpx and the settings
in the API commands' `ApiClient`, NumPy and SciPy in `hms profile measure`, the embedded servers in
`hms up`. `hms --help` then starts in a fraction of the time (bench/cli.py measures it, and
tests/unit/test_cli_startup.py keeps the heavy modules out of it).
"""

from __future__ import annotations

import sys

import click

from app.cli import keys, models, runs, study
from app.cli.policies import policies
from app.cli.profile import profile_group
from app.cli.simulate import simulate


@click.group()
def main() -> None:
    """Hybrid ML Scheduler: compare placement policies on CPU/GPU clusters."""


@main.command()
def up() -> None:
    """Start PostgreSQL, Valkey, the API, a worker, beat and Flower (Ctrl-C stops all)."""
    from app.devstack.launcher import up as launch

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
