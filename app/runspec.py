"""The RunSpec: what a user asks to simulate. Validated once here (pydantic), then turned into the
core's plain objects (`Workload`, `Cluster`, a `Scenario` of true and estimated times) by
`build_scenario`.

The API's request body and `hms simulate --spec FILE` take exactly this JSON. Files named by
`path` are read only by `hms simulate`; the API takes the same content inline (`data`/`text`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.errors import InvalidSpec, ProfileNotFound
from app.profilespec import NAME_PATTERN, load_shipped_profile, shipped_profile_names
from app.sim.cluster import (
    DEFAULT_CPU,
    DEFAULT_GPU,
    Cluster,
    DeviceModel,
    HardwareProfile,
    calibrate,
)
from app.sim.generators import LayeredDagParams, SyntheticParams, layered_dag, synthetic_workload
from app.sim.importers import (
    workload_from_csv,
    workload_from_records,
    workload_from_stg,
    workload_from_wfcommons,
)
from app.sim.importers.inline import KERNEL_FIELDS
from app.sim.kernelmix import KernelMix
from app.sim.knowledge import Knowledge, Scenario
from app.sim.policies import POLICY_NAMES
from app.sim.predicted import MODEL_NAMES, MODEL_POLICIES
from app.sim.problem import Infeasible, Problem
from app.sim.profile import NotInProfile, Profile
from app.sim.ranking import RankMetric
from app.sim.tiled import FACTORIZATIONS, KERNELS, Factorization, task_count, tiled_workload
from app.sim.workload import InvalidWorkload, Workload

MAX_TASKS = 1_000_000  # generated online workloads
MAX_DAG_TASKS = 200_000  # generated DAGs and imported workloads
MAX_TEXT = 20_000_000  # characters of inline STG / CSV text
MAX_EXPLICIT_DEVICES = 256
# Tile edge, elements: a 8192^2 tile of doubles is 512 MB, beyond the 64-2048 that tiled-algebra
# papers and runtimes use; a bound on the input, not a measured limit.
MAX_TILE_SIZE = 8192
# A device is one CPU core or one GPU: today's largest GPU boards draw about 1 kW; the bounds keep
# energy (J) and cost finite (a price of 1e308 gave an infinite cost). Bounds on the input, not
# measured limits.
MAX_POWER = 1e5  # W
MAX_PRICE = 1e6  # per hour
# The largest integer every JSON client reads exactly (I-JSON, RFC 7493: 2**53 - 1); larger
# seeds came back changed from JavaScript and from float-based JSON parsers.
MAX_SEED = 2**53 - 1
DEFAULT_LOAD = 0.85
#: The kernel profile of a cluster that names none (workloads whose tasks call kernels): a
#: published measurement of a V100 and Skylake cores (app/profiles/, docs/profiles.md).
DEFAULT_KERNEL_PROFILE = "v100-skylake-mcsweeney2020"
#: Workloads whose tasks call a kernel profile's kernels (the others state their own costs).
KERNEL_KINDS = frozenset({"synthetic", "layered_dag", "tiled"})

PolicyName = Literal[POLICY_NAMES]  # type: ignore[valid-type]
#: The kernel performance models a run may decide with: the estimators that learn from what
#: runs observed (app/ml/perfmodels.py), and `exact`, the profile's own measured means
#: (predicted.ExactModel, the oracle estimator).
EXACT_MODEL = "exact"
PERF_MODEL_NAMES = (*MODEL_NAMES, EXACT_MODEL)
PerfModelName = Literal[PERF_MODEL_NAMES]  # type: ignore[valid-type]


def _a_json_number(value: Any) -> Any:
    """Refuse what pydantic's lax mode would read as an integer though the schema's `integer`
    does not allow it: `true` as 1, `"5"` as 5 (StrictInt would also refuse 5.0, which it
    allows). Optional integers are checked by `_Spec` instead: pydantic writes the bounds of an
    `Integer | None` into the JSON schema as unknown keywords (`ge`), not as `minimum`."""
    if isinstance(value, bool | str):
        raise PydanticCustomError(
            "number_type",
            "Input should be a number, not {input_type}",
            {"input_type": type(value).__name__},
        )
    return value


Integer = Annotated[int, BeforeValidator(_a_json_number)]
KernelProfileName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


def _field_error(location: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A validation error at a nested location, for rules that span several fields."""
    error = PydanticCustomError("spec_rule", message)
    return ValidationError.from_exception_data(
        "RunSpec", [InitErrorDetails(type=error, loc=location, input=value)]
    )


#: How a name in `cluster.profile` becomes a Profile: `kernel_profile` (the shipped ones), or a
#: tenant's view (app.services.profiles.run_profiles: shipped + the tenant's uploads). Raises
#: `ProfileNotFound` for a name it does not know.
ProfileLookup = Callable[[str], Profile]


@lru_cache(maxsize=32)
def kernel_profile(name: str) -> Profile:
    """A shipped kernel profile, as the core reads it. `ProfileNotFound` if there is none of
    that name."""
    return load_shipped_profile(name).to_profile()


class _Spec(BaseModel):
    # NaN and Infinity are no JSON, but Python's json module reads them (`hms simulate --spec`):
    # an infinite `speed` passed `gt=0`.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator(
        "seed", "intensity_seed", "perf_model_version", mode="before", check_fields=False
    )
    @classmethod
    def _optional_integer(cls, value: Any) -> Any:
        return value if value is None else _a_json_number(value)


def _needed(mix: KernelMix | None) -> KernelMix:
    if mix is None:
        raise ValueError("a generated workload draws its tasks from a kernel profile's mix")
    return mix


class SyntheticWorkloadSpec(_Spec):
    """Tasks arriving as a Poisson process, optionally depending on recent tasks; each task one
    call of a kernel of the cluster's kernel profile (app/sim/kernelmix.py)."""

    kind: Literal["synthetic"]
    num_tasks: Integer = Field(ge=1, le=MAX_TASKS, description="Number of tasks to generate.")
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="Generator seed; defaults to the run's seed."
    )
    load: StrictFloat | None = Field(
        default=None,
        gt=0,
        le=10,
        description=f"Offered load: the arrival rate / the cluster's service capacity for this "
        f"task mix (app/sim/load.py); default {DEFAULT_LOAD} unless `arrival_rate` is given.",
    )
    arrival_rate: StrictFloat | None = Field(
        default=None,
        gt=0,
        le=1e6,
        description="Tasks per second, instead of `load` (give one of the two, not both).",
    )
    dependency_probability: StrictFloat = Field(
        default=0.0, ge=0, le=1, description="Share of tasks that depend on earlier ones."
    )
    max_parents: Integer = Field(default=2, ge=1, le=16)
    lookback: Integer = Field(
        default=16, ge=1, le=1000, description="Parents among the last N tasks."
    )

    @model_validator(mode="after")
    def _load_or_rate(self) -> SyntheticWorkloadSpec:
        if self.load is not None and self.arrival_rate is not None:
            raise ValueError(
                "give `load` (offered load) or `arrival_rate` (tasks per second), not both"
            )
        return self

    @property
    def offered_load(self) -> float | None:
        """The load to scale arrivals to; None when an explicit arrival rate is given."""
        if self.arrival_rate is not None:
            return None
        return DEFAULT_LOAD if self.load is None else self.load

    def build(self, seed: int, mix: KernelMix | None = None) -> Workload:
        """Arrivals at `arrival_rate`, or at rate 1 to be scaled to the load (build_scenario)."""
        params = SyntheticParams(
            num_tasks=self.num_tasks,
            arrival_rate=self.arrival_rate or 1.0,
            mix=_needed(mix),
            dependency_probability=self.dependency_probability,
            max_parents=self.max_parents,
            lookback=self.lookback,
        )
        return synthetic_workload(params, np.random.default_rng(seed))


class LayeredDagSpec(_Spec):
    """A random layered DAG in the spirit of DAGGEN (see app/sim/generators.py); each task one
    call of a kernel of the cluster's kernel profile (app/sim/kernelmix.py)."""

    kind: Literal["layered_dag"]
    num_tasks: Integer = Field(ge=1, le=MAX_DAG_TASKS)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    width: StrictFloat = Field(default=0.5, gt=0, le=1, description="Tasks per level = n ** width.")
    regularity: StrictFloat = Field(default=0.5, ge=0, le=1)
    density: StrictFloat = Field(default=0.3, gt=0, le=1)
    jump: Integer = Field(default=1, ge=1, le=20)
    ccr: StrictFloat = Field(default=0.5, ge=0, le=1000, description="Communication / computation.")

    def build(self, seed: int, mix: KernelMix | None = None) -> Workload:
        params = LayeredDagParams(
            num_tasks=self.num_tasks,
            width=self.width,
            regularity=self.regularity,
            density=self.density,
            jump=self.jump,
            ccr=self.ccr,
            mix=_needed(mix),
        )
        return layered_dag(params, np.random.default_rng(seed))


class TiledSpec(_Spec):
    """A tile factorization's DAG (app/sim/tiled.py): right-looking Cholesky, LU without
    pivoting, or QR of an n x n matrix of doubles in `tiles` x `tiles` tiles of `tile_size`^2."""

    kind: Literal["tiled"]
    factorization: Factorization = Field(description=f"One of {', '.join(FACTORIZATIONS)}.")
    tiles: Integer = Field(ge=1, le=1000, description="Tiles per row and column (N).")
    tile_size: Integer = Field(
        ge=1, le=MAX_TILE_SIZE, description="Rows and columns of a tile (b); n = N * b."
    )

    @model_validator(mode="after")
    def _not_too_many_tasks(self) -> TiledSpec:
        count = task_count(self.factorization, self.tiles)
        if count > MAX_DAG_TASKS:
            raise ValueError(
                f"{self.factorization} on {self.tiles} x {self.tiles} tiles has {count} tasks; "
                f"at most {MAX_DAG_TASKS}"
            )
        return self

    def build(self, seed: int, mix: KernelMix | None = None) -> Workload:
        return tiled_workload(self.factorization, self.tiles, self.tile_size)

    def check_profile(self, profile: Profile, devices: list[str]) -> None:
        """Raise a validation error (located in the RunSpec) unless `profile` times every kernel of
        this factorization on each of `devices` at `tile_size`: no kernel is guessed, no size
        extrapolated."""
        for device in devices:
            for kernel in KERNELS[self.factorization]:
                try:
                    profile.curve(kernel, device)
                except NotInProfile as exc:
                    raise _field_error(
                        ("cluster", "profile"),
                        f"{exc}, which {self.factorization} calls",
                        profile.name,
                    ) from None
                try:
                    profile.time(kernel, device, self.tile_size)
                except NotInProfile as exc:
                    location = ("workload", "tile_size")
                    raise _field_error(location, str(exc), self.tile_size) from None


class _ImportSpec(_Spec):
    path: str | None = Field(default=None, description="A file to read (hms simulate only).")
    reference_speed: StrictFloat = Field(
        default=DEFAULT_CPU.speed,
        gt=0,
        le=1e7,
        description="GFLOP/s of the core runtimes refer to.",
    )
    intensity_seed: int | None = Field(default=None, ge=0, le=MAX_SEED)

    def _read(self) -> str:
        try:
            return Path(self.path or "").read_text()
        except OSError as exc:
            raise InvalidSpec(f"cannot read {self.path}: {exc.strerror}") from exc


class WfCommonsSpec(_ImportSpec):
    """A WfCommons instance (WfFormat JSON): inline `data`, or `path` for hms simulate."""

    kind: Literal["wfcommons"]
    data: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WfCommonsSpec:
        if (self.data is None) == (self.path is None):
            raise ValueError("give exactly one of `data` (the instance's JSON) and `path`")
        return self

    def build(self, seed: int, mix: KernelMix | None = None) -> Workload:
        document = self.data
        if document is None:
            try:
                document = json.loads(self._read())
            except json.JSONDecodeError as exc:
                raise InvalidSpec(f"{self.path} is not JSON: {exc}") from exc
        return workload_from_wfcommons(
            document,
            reference_speed=self.reference_speed,
            intensity_seed=seed if self.intensity_seed is None else self.intensity_seed,
            max_tasks=MAX_DAG_TASKS,
        )


class StgSpec(_ImportSpec):
    """A Standard Task Graph Set file: inline `text`, or `path` for hms simulate."""

    kind: Literal["stg"]
    text: str | None = Field(default=None, max_length=MAX_TEXT)

    @model_validator(mode="after")
    def _one_source(self) -> StgSpec:
        if (self.text is None) == (self.path is None):
            raise ValueError("give exactly one of `text` (the STG file's content) and `path`")
        return self

    def build(self, seed: int, mix: KernelMix | None = None) -> Workload:
        return workload_from_stg(
            self.text if self.text is not None else self._read(),
            reference_speed=self.reference_speed,
            intensity_seed=seed if self.intensity_seed is None else self.intensity_seed,
            max_tasks=MAX_DAG_TASKS,
        )


class InlineSpec(_Spec):
    """Tasks listed in the spec: JSON `tasks` records or CSV `csv` text (see README)."""

    kind: Literal["inline"]
    tasks: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_DAG_TASKS)
    csv: str | None = Field(default=None, max_length=MAX_TEXT)

    @model_validator(mode="after")
    def _one_source(self) -> InlineSpec:
        if (self.tasks is None) == (self.csv is None):
            raise ValueError("give exactly one of `tasks` (a list of records) and `csv`")
        return self

    @property
    def calls_kernels(self) -> bool:
        """Whether the tasks are kernel calls (`kernel` and `tile_size`; the importer checks that
        all are or none is)."""
        if self.tasks is not None:
            return any(
                record.get(name) is not None for record in self.tasks for name in KERNEL_FIELDS
            )
        header = next(csv.reader(io.StringIO(self.csv or "")), [])
        return any(column.strip() in KERNEL_FIELDS for column in header)

    def build(self, seed: int, mix: KernelMix | None = None) -> Workload:
        if self.tasks is not None:
            return workload_from_records(self.tasks, max_tasks=MAX_DAG_TASKS)
        return workload_from_csv(self.csv or "", max_tasks=MAX_DAG_TASKS)


class ExplicitSpec(_Spec):
    """The literature's form: `compute[i][d]` seconds of task i on device d, and
    `edges` [source, target, seconds paid when they run on different devices]."""

    kind: Literal["explicit"]
    compute: list[list[StrictFloat]] = Field(min_length=1, max_length=MAX_DAG_TASKS)
    edges: list[tuple[Integer, Integer, StrictFloat]] = Field(
        default_factory=list, max_length=10 * MAX_DAG_TASKS
    )

    @model_validator(mode="after")
    def _rectangular(self) -> ExplicitSpec:
        width = len(self.compute[0])
        if not 1 <= width <= MAX_EXPLICIT_DEVICES:
            raise ValueError(f"each compute row needs 1..{MAX_EXPLICIT_DEVICES} costs")
        if any(len(row) != width for row in self.compute):
            raise ValueError("every compute row needs one cost per device (same length)")
        return self

    @property
    def num_devices(self) -> int:
        return len(self.compute[0])

    def build(self, seed: int, mix: KernelMix | None = None) -> Workload:
        n = len(self.compute)
        pairs = [(source, target) for source, target, _ in self.edges]
        return Workload.from_edges(
            size=np.ones(n),
            intensity=np.zeros(n),
            memory=np.zeros(n),
            arrival=np.zeros(n),
            edges=pairs,
            exec_cost=np.array(self.compute, dtype=np.float64),
            edge_cost=np.array([cost for *_, cost in self.edges], dtype=np.float64),
        )


WorkloadSpec = Annotated[
    SyntheticWorkloadSpec
    | LayeredDagSpec
    | TiledSpec
    | WfCommonsSpec
    | StgSpec
    | InlineSpec
    | ExplicitSpec,
    Field(discriminator="kind"),
]
IMPORTED_KINDS = frozenset({"wfcommons", "stg", "inline", "explicit"})


class DeviceOverrides(_Spec):
    """Replace some characteristics of a kind of device (units as in app/sim/cluster.py)."""

    speed: StrictFloat | None = Field(default=None, gt=0, description="GFLOP/s")
    scalar_speed: StrictFloat | None = Field(default=None, gt=0, description="GFLOP/s")
    memory: StrictFloat | None = Field(default=None, gt=0, description="MB")
    bandwidth: StrictFloat | None = Field(default=None, gt=0, description="MB/s to host memory")
    latency: StrictFloat | None = Field(default=None, ge=0, le=10, description="s per transfer")
    power_busy: StrictFloat | None = Field(default=None, ge=0, le=MAX_POWER, description="W")
    power_idle: StrictFloat | None = Field(default=None, ge=0, le=MAX_POWER, description="W")
    price: StrictFloat | None = Field(default=None, ge=0, le=MAX_PRICE, description="per hour")
    memory_bandwidth: StrictFloat | None = Field(
        default=None, gt=0, le=1e5, description="GB/s to the device's own memory (roofline)"
    )

    def apply(self, model: DeviceModel) -> DeviceModel:
        return replace(model, **self.model_dump(exclude_none=True))


class ClusterSpec(_Spec):
    cpus: Integer = Field(default=8, ge=0, le=1024, description="Number of CPU cores.")
    gpus: Integer = Field(default=2, ge=0, le=256, description="Number of GPUs.")
    profile: dict[str, Any] | KernelProfileName | None = Field(
        default=None,
        description="A kernel profile's name (e.g. epyc-2c-vm-2026-12): the tasks of synthetic, "
        f"layered_dag and tiled workloads call its kernels and take the times it measured "
        f"(default {DEFAULT_KERNEL_PROFILE}); or a hardware profile (profiled_sizes, cpu_times, "
        "gpu_times) to calibrate the device models' nominal speeds with (the estimates), the "
        "true times then coming from the default kernel profile.",
    )
    cpu: DeviceOverrides | None = None
    gpu: DeviceOverrides | None = None
    contention: Literal["alone", "all_busy"] = Field(
        default="alone",
        description="Which of the kernel profile's CPU timings are the truth: `alone` (one core "
        "working, the others idle) or `all_busy` (measured with every core working at once: "
        "cores share caches and memory bandwidth; the profile must have them).",
    )

    @property
    def kernel_profile_name(self) -> str | None:
        """The kernel profile the cluster names, if `profile` is a name."""
        return self.profile if isinstance(self.profile, str) else None

    @property
    def device_kinds(self) -> list[str]:
        """The kinds of device the cluster has, as profiles name them."""
        return [kind for kind, count in (("cpu", self.cpus), ("gpu", self.gpus)) if count]

    @model_validator(mode="after")
    def _has_a_device(self) -> ClusterSpec:
        if self.cpus + self.gpus == 0:
            raise ValueError("a cluster needs at least one CPU core or GPU")
        if isinstance(self.profile, dict):
            HardwareProfile.from_json(self.profile)  # raises ValueError with the reason
        return self

    def build(self) -> Cluster:
        cpu, gpu = DEFAULT_CPU, DEFAULT_GPU
        if isinstance(self.profile, dict):
            cpu, gpu = calibrate(HardwareProfile.from_json(self.profile))
        if self.cpu is not None:
            cpu = self.cpu.apply(cpu)
        if self.gpu is not None:
            gpu = self.gpu.apply(gpu)
        return Cluster.homogeneous_kinds(self.cpus, self.gpus, cpu, gpu)


class RunSpec(_Spec):
    workload: WorkloadSpec
    cluster: ClusterSpec | None = Field(
        default=None,
        description="Defaults to 8 CPU cores and 2 GPUs; for `explicit`, to one "
        "abstract processor per cost column.",
    )
    policies: list[PolicyName] = Field(min_length=1, max_length=len(POLICY_NAMES))
    seed: Integer = Field(default=0, ge=0, le=MAX_SEED, description="Seed of every random choice.")
    priority: Integer = Field(default=5, ge=0, le=9, description="9 is the most urgent.")
    knowledge: Knowledge = Field(
        default=Knowledge.ESTIMATED,
        description="`estimated`: policies decide on the nominal cost model's estimates (learned "
        "on its model's predictions, rl on what it observed, only oracle on the truth); "
        "`clairvoyant`: every policy decides on the true times.",
    )
    rank_by: RankMetric | None = Field(
        default=None,
        description="The metric that orders the leaderboard; default mean_flow_time for online "
        "workloads (arrivals spread in time), makespan for static ones.",
    )
    rl_warm_start: StrictBool = Field(
        default=False,
        description="Start `rl` from the parameters it learned in earlier runs (the run records "
        "which); off, every run starts a fresh agent and is reproducible from its spec alone.",
    )
    perf_model: PerfModelName = Field(
        default="history",
        description="The kernel performance model the runtime schedulers (dm, dmda, dmdas, "
        "heteroprio) decide with: `history` (StarPU's default: mean time per kernel, size and "
        "kind of device, used from 10 observations on), `regression` (a*b^p), `nl_regression` "
        "(a*b^p + c), `learned` (gradient-boosted trees), each fitted on the kernel executions "
        "your earlier runs on the same profile and contention observed; or `exact` (the "
        "profile's own measured means). Used only by a run whose tasks call kernels and that "
        "includes one of those policies, and not under `knowledge: clairvoyant` (every policy "
        "sees the truth); ignored otherwise. The run records the fitted version it used.",
    )
    perf_model_version: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="Decide with this persisted version of `perf_model` (GET /api/v1/perf-models)"
        " instead of a fit on your newest observations: redoes a run exactly.",
    )

    @model_validator(mode="after")
    def _kernel_profile_fits(self) -> RunSpec:
        named = self.cluster.kernel_profile_name if self.cluster is not None else None
        if named is not None and not self.calls_kernels:
            raise _field_error(
                ("cluster", "profile"),
                "a kernel profile needs a workload whose tasks call kernels (kind: "
                f"{', '.join(sorted(KERNEL_KINDS))}, or inline kernel calls); "
                f"{self.workload.kind} tasks state their own costs",
                named,
            )
        if self.kernel_profile_name is None and self.cluster and self.cluster.contention != "alone":
            raise _field_error(
                ("cluster", "contention"),
                f"{self.workload.kind} tasks state their own costs: no profile's timings apply",
                self.cluster.contention,
            )
        name = self.kernel_profile_name
        if name is not None and name in shipped_profile_names():
            self.check_profile(self.as_run_sees(kernel_profile(name)))
        # Another name may be a tenant's upload: checked where the tenant is known
        # (checked_profile, called by the services and by build_scenario).
        return self

    def as_run_sees(self, profile: Profile) -> Profile:
        """The profile as this run's truth reads it: with every core busy if the cluster says
        so (`contention`)."""
        if self.cluster is not None and self.cluster.contention == "all_busy":
            return profile.every_core_busy()
        return profile

    def check_profile(self, profile: Profile) -> None:
        """Raise a validation error (at the field to blame) unless `profile` (as_run_sees it)
        times what this spec's tasks call on every kind of device of its cluster."""
        devices = (self.cluster or ClusterSpec()).device_kinds
        if isinstance(self.workload, TiledSpec):
            self.workload.check_profile(profile, devices)
            return
        if isinstance(self.workload, InlineSpec):
            return  # its calls are checked against the profile when it is built (check_covered)
        try:
            KernelMix.of(profile, devices)
        except NotInProfile as exc:
            raise _field_error(("cluster", "profile"), str(exc), profile.name) from None

    @property
    def calls_kernels(self) -> bool:
        """Whether the tasks call a kernel profile's kernels (else they state their own costs)."""
        inline = isinstance(self.workload, InlineSpec) and self.workload.calls_kernels
        return self.workload.kind in KERNEL_KINDS or inline

    @property
    def kernel_profile_name(self) -> str | None:
        """The kernel profile the tasks call: the cluster's, or the default for a workload whose
        tasks call kernels; None for a workload that states its own costs."""
        if not self.calls_kernels:
            return None
        named = self.cluster.kernel_profile_name if self.cluster is not None else None
        return named or DEFAULT_KERNEL_PROFILE

    @field_validator("policies")
    @classmethod
    def _unique(cls, policies: list[str]) -> list[str]:
        if len(set(policies)) != len(policies):
            raise ValueError("each policy may appear only once")
        return policies

    @model_validator(mode="after")
    def _version_of_a_fitted_model(self) -> RunSpec:
        if self.perf_model_version is not None and self.perf_model == EXACT_MODEL:
            raise _field_error(
                ("perf_model_version",),
                "`exact` is the profile's own means: it has no fitted versions",
                self.perf_model_version,
            )
        return self

    @property
    def kernel_model_name(self) -> str | None:
        """The performance model this run decides with (`perf_model`), or None where none is
        used: its tasks call no kernel, no policy of it decides with one (MODEL_POLICIES), or
        every policy sees the truth (clairvoyant)."""
        deciding = any(policy in MODEL_POLICIES for policy in self.policies)
        if not (deciding and self.calls_kernels) or self.knowledge == Knowledge.CLAIRVOYANT:
            return None
        return self.perf_model

    @property
    def contention(self) -> str:
        """Which CPU timings of the profile are the truth (ClusterSpec.contention)."""
        return (self.cluster or ClusterSpec()).contention

    @property
    def workload_seed(self) -> int:
        seed = getattr(self.workload, "seed", None)
        return self.seed if seed is None else seed

    @property
    def imported(self) -> bool:
        """Whether the workload comes from user data (checked at submission) rather than a
        generator (valid by construction)."""
        return self.workload.kind in IMPORTED_KINDS

    @property
    def paths(self) -> list[str]:
        path = getattr(self.workload, "path", None)
        return [] if path is None else [path]


def checked_profile(spec: RunSpec, profiles: ProfileLookup = kernel_profile) -> Profile | None:
    """The kernel profile the spec's tasks call (None for a workload that states its own costs),
    looked up in `profiles` and checked against the spec: a `ValidationError` located at the
    field to blame if the name is unknown or the profile cannot time the tasks. The RunSpec's own
    validation does this for shipped names; a tenant's uploads need its lookup."""
    name = spec.kernel_profile_name
    if name is None:
        return None
    try:
        profile = profiles(name)
    except ProfileNotFound as exc:
        raise _field_error(("cluster", "profile"), str(exc), name) from None
    profile = spec.as_run_sees(profile)
    spec.check_profile(profile)
    return profile


def invalid_spec(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> InvalidSpec:
    """A validation error of a spec as the API reports a spec's errors: located, with its reason."""
    error = exc.errors()[0]
    return InvalidSpec(error["msg"], (*prefix, *map(str, error["loc"])))


def build_cluster(spec: RunSpec) -> Cluster:
    if spec.cluster is not None:
        return spec.cluster.build()
    if isinstance(spec.workload, ExplicitSpec):
        return Cluster.processors(spec.workload.num_devices)
    return ClusterSpec().build()


def build_scenario(spec: RunSpec, profiles: ProfileLookup = kernel_profile) -> Scenario:
    """The workload, cluster, true and estimated times a spec describes, deterministically from
    its seeds; `profiles` resolves the kernel profile it names."""
    try:
        cluster = build_cluster(spec)
        profile = checked_profile(spec, profiles)
        devices = (spec.cluster or ClusterSpec()).device_kinds
        generated = isinstance(spec.workload, SyntheticWorkloadSpec | LayeredDagSpec)
        mix = KernelMix.of(profile, devices) if generated and profile is not None else None
        workload = spec.workload.build(spec.workload_seed, mix)
        load = getattr(spec.workload, "offered_load", None)
        return Scenario.build(workload, cluster, profile, spec.seed, spec.knowledge, load)
    except ValidationError as exc:
        raise invalid_spec(exc) from exc
    except NotInProfile as exc:  # validation checks first; this is the core's own guard
        raise InvalidSpec(str(exc), ("body", "cluster", "profile")) from exc
    except (InvalidWorkload, Infeasible, ValueError) as exc:
        raise InvalidSpec(str(exc)) from exc


def build_problem(spec: RunSpec, profiles: ProfileLookup = kernel_profile) -> Problem:
    """The problem as it really runs: the spec's workload and cluster under the true times."""
    return build_scenario(spec, profiles).truth
