"""`hms` loads only what a command needs (app/cli/main.py): which modules a fresh interpreter
has imported after a command, read from its `sys.modules`. No time is measured here
(bench/cli.py does that): a module that should not load is the cause a slow start has."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Run as `python -c PROBE OUT ARGS...`: `hms ARGS...`, then the names in sys.modules into OUT.
PROBE = """
import json, sys
from app.cli.main import main
try:
    main(sys.argv[2:], prog_name="hms")
except SystemExit as exit:
    assert not exit.code, exit.code
with open(sys.argv[1], "w") as out:
    json.dump(sorted(sys.modules), out)
"""

#: What no command needs to start, nor `hms simulate` of policies other than `learned`.
SERVER_SIDE = {"sqlalchemy", "psycopg2", "celery", "kombu", "redis", "fastapi", "httpx"}
ML = {"sklearn", "skops"}


def loaded_by(tmp_path: Path, *args: str) -> set[str]:
    """The top-level packages (and `app.` modules) a fresh `hms ARGS...` has imported."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", PROBE, str(out), *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    modules = json.loads(out.read_text())
    return {m.split(".")[0] for m in modules} | {m for m in modules if m.startswith("app.")}


def test_help_loads_no_engine_ml_settings_or_client_library(tmp_path):
    loaded = loaded_by(tmp_path, "--help")
    heavy = SERVER_SIDE | ML | {"numba", "numpy", "scipy", "pydantic", "pydantic_settings", "rich"}
    assert loaded & heavy == set()
    assert loaded & {"app.settings", "app.sim", "app.services", "app.devstack"} == set()


def test_simulate_without_learned_loads_no_ml_or_server_side_library(tmp_path):
    # About 1.5 s of CPU (numba loads its cached engine): the run itself is what loaded the ML
    # stack, conditionally (app/services/simulation.py), so importing alone would not show it.
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "workload": {"kind": "synthetic", "num_tasks": 3},
                "cluster": {"cpus": 2, "gpus": 1},
                "policies": ["round_robin", "eft", "heft"],
            }
        )
    )
    loaded = loaded_by(tmp_path, "simulate", "--spec", str(spec), "--json")
    assert {"numba", "app.sim.engine"} <= loaded  # it did simulate
    assert loaded & (SERVER_SIDE | ML | {"app.ml.bootstrap"}) == set()
