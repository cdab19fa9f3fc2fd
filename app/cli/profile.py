"""`hms profile`: kernel profiles, what a machine measured. `hms profile measure` times this
machine's CPU, and its CUDA GPU where CuPy finds one (app/cli/measure/), and writes the profile
as JSON; `list`, `show` and `upload` are
clients of /api/v1/profiles. The measuring code (NumPy, SciPy, threadpoolctl) loads when
`measure` runs, not as `hms` starts (app/cli/main.py)."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from app.cli import tables
from app.cli.client import ApiClient, json_option, show_as, with_api

if TYPE_CHECKING:
    from app.cli.measure.gpu import ArrayModule

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def _name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not NAME.fullmatch(value):
        raise click.BadParameter("lower-case letters, digits, '.', '_' or '-' (at most 64)")
    return value


def _sizes(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        sizes = tuple(sorted({int(s) for s in value.split(",") if s.strip()}))
    except ValueError:
        raise click.BadParameter("comma-separated tile sizes, e.g. 32,64,128") from None
    if not sizes or sizes[0] < 1:
        raise click.BadParameter("tile sizes are integers >= 1")
    return sizes


def _command_line(ctx: click.Context) -> str:
    """The command as given, for the profile's provenance: the options from the command line
    (not defaults), in a canonical form."""
    words = ["hms", "profile", "measure"]
    for param in ctx.command.params:
        name = param.name or ""
        if ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[name]
        flag = f"--{name}"
        if isinstance(value, bool):
            secondary = isinstance(param, click.Option) and param.secondary_opts
            words += [flag] if value else [f"--no-{name}"] if secondary else []
        elif isinstance(value, tuple):
            words += [flag, ",".join(map(str, value))]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


@click.group("profile")
def profile_group() -> None:
    """Kernel profiles: how fast each tile kernel runs on a machine, as measured."""


def _gpu_to_measure(wanted: bool | None) -> ArrayModule | None:
    """The GPU to measure: the one CuPy finds unless --no-gpu; --gpu without one is an error."""
    from app.cli.measure.gpu import NoGpu, find_gpu

    if wanted is False:
        click.echo("GPU not measured (--no-gpu); measuring the CPU only.", err=True)
        return None
    try:
        gpu = find_gpu()
    except NoGpu as exc:
        if wanted:
            raise click.ClickException(f"--gpu: no CUDA GPU found ({exc})") from exc
        click.echo(f"No CUDA GPU found ({exc}); measuring the CPU only.", err=True)
        return None
    click.echo(f"CUDA GPU found: {gpu.device}; measuring it and the CPU.", err=True)
    return gpu


@profile_group.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the profile [./profile-NAME.json].")  # fmt: skip
@click.option("--thorough", is_flag=True, help="More sizes (16-1024), ~4x the time per cell.")
@click.option("--name", callback=_name, help="The profile's id [CPU model and core count].")
@click.option("--sizes", callback=_sizes, help="Tile sizes b, e.g. 32,64,128 [the mode's].")
@click.option("--repeats", type=click.IntRange(min=1), default=None,
              help="Exactly this many timed calls per cell instead of a time budget.")  # fmt: skip
@click.option("--processes", type=click.IntRange(min=1), default=None,
              help="Processes keeping the cores busy for all_busy [one per core].")  # fmt: skip
@click.option("--gpu/--no-gpu", default=None,
              help="Measure the CUDA GPU too (CuPy, the gpu extra) [if found].")  # fmt: skip
@click.option("--warm", is_flag=True,
              help="Time every call on the same operands, in cache (the first method) instead "
                   "of on cold tiles from a pool twice the last-level cache.")  # fmt: skip
def measure(
    out: Path | None,
    thorough: bool,
    name: str | None,
    sizes: tuple[int, ...],
    repeats: int | None,
    processes: int | None,
    gpu: bool | None,
    warm: bool,
) -> None:
    """Measure this machine: the tile kernels of Cholesky, LU and QR on one core (one BLAS
    thread), alone and with every core busy, each call on tiles out of the caches (--warm: in
    them), and on the CUDA GPU with its transfers where CuPy finds one; print the path of the
    profile written."""
    from app.cli.follow import LiveBar
    from app.cli.measure.contention import BusyCoresFailed
    from app.cli.measure.gpu import GpuMeasurementFailed
    from app.cli.measure.machine import default_name
    from app.cli.measure.profile import measure_profile, plan_for
    from app.runtime.threads import available_cores

    device = _gpu_to_measure(gpu)
    plan = plan_for(thorough, sizes or None, repeats, processes or available_cores(), warm)
    name = name or default_name(device.device if device else None)
    command = _command_line(click.get_current_context())

    def describe(state: Mapping[str, Any]) -> str:
        return str(state["cell"])

    def show(done: int, total: int, cell: str) -> None:
        bar({"progress": done / total, "cell": cell})

    with LiveBar(describe) as bar:
        try:
            document = measure_profile(plan, name, command, show, device)
        except (BusyCoresFailed, GpuMeasurementFailed) as exc:
            raise click.ClickException(str(exc)) from exc
    path = out or Path(f"profile-{name}.json")
    path.write_text(json.dumps(document, indent=2) + "\n")
    click.echo(str(path))


@profile_group.command("list")
@json_option
@with_api
def list_profiles(as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """The shipped profiles and yours (an admin key: everyone's), one a line."""
    profiles = ApiClient(api_url, api_key).call("GET", "/api/v1/profiles")
    show_as(profiles, as_json, tables.profile_list)


@profile_group.command("show")
@click.argument("name")
@json_option
@with_api
def show_profile(name: str, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Profile NAME: its provenance and mean time per kernel, device and tile size."""
    profile = ApiClient(api_url, api_key).call("GET", f"/api/v1/profiles/{name}")
    show_as(profile, as_json, tables.profile_fields)


@profile_group.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_api
def upload_profile(file: Path, api_url: str | None, api_key: str | None) -> None:
    """Upload the profile in FILE (as `measure` writes it) as yours; print its name."""
    try:
        document = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{file} is not a JSON document: {exc}") from exc
    response = ApiClient(api_url, api_key).request("POST", "/api/v1/profiles", json=document)
    click.echo(response.json()["name"])
