"""The performance models a runtime scheduler decides with: StarPU's estimators and this
project's learned model, behind one interface, fitted on observed kernel executions.

An observation is one execution: a kernel (LAPACK name) on b x b tiles, on a kind of device
("cpu", "gpu"), and the seconds it took. Every model answers `predict(kernel, sizes, device)` in
seconds, and NaN where it has no answer (the model is *uncalibrated* there): a scheduler must
then explore, as StarPU's does, rather than trust a guess. The models (Augonnet, Thibault &
Namyst, "Automatic calibration of performance models on heterogeneous multicore
architectures", Euro-Par 2009 workshops; Augonnet et al., "StarPU: a unified platform for task
scheduling on heterogeneous multicore architectures", CCPE 2011):

- `history`: the mean observed time per (kernel, size, device kind), once that entry holds at
  least `minimum_samples` observations (StarPU's STARPU_CALIBRATE_MINIMUM, default 10, read in
  its src/core/perfmodel/perfmodel_history.c); a size never observed is uncalibrated. It is the
  plain mean of every observation: StarPU's rejection of outlying samples is not reproduced.
- `regression`: t = a * b^p per (kernel, device kind), least squares on (ln b, ln t): a power
  law is a line in log space. Needs two distinct sizes.
- `nl_regression`: t = a * b^p + c, c >= 0 (a fixed cost per call), non-linear least squares on
  the times themselves (scipy's curve_fit, trust-region reflective for the bound), started from
  the log-space fit with c = 0. Needs three distinct sizes.
- `learned`: this project's model, fitted by the retrain's own `training.fit` (the same
  HistGradientBoostingRegressor and `FitParams`, the same target ln(seconds per GFLOP)) on the
  features (features.FEATURE_NAMES) a kernel call has as a task of a kernel workload
  (kernelmix.py): its flops in GFLOP, intensity 1, the MB of the tiles it touches, no input
  data from parents (a call observed alone), the kernel's category code, and the default
  cluster's device of its kind (cluster.DEFAULT_CPU / DEFAULT_GPU). It answers everywhere,
  which is its promise and its risk.

The regressions answer at any size, inside or outside the sizes they saw, as the formulas do;
whether that extrapolation holds is what bench/predictors.py measures.

A fitted model is stored as JSON (`to_state`, `model_from_state`): history its means and
counts, the regressions their coefficients, `learned` only its parameters (its estimator is an
artifact stored apart, with app.ml.artifacts: skops, never pickle). A state read back predicts
bit-identically (JSON keeps a float's shortest exact repr).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import curve_fit

from app.ml.features import category_codes, device_features, ln_seconds
from app.ml.training import FitParams, Samples, fit
from app.sim.cluster import Cluster, DeviceKind
from app.sim.costs import transfer_times_of
from app.sim.kernelmix import TILES_TOUCHED
from app.sim.measured import DEVICE_NAMES
from app.sim.predicted import MODEL_NAMES
from app.sim.problem import Problem
from app.sim.schedule import Schedule
from app.sim.tiled import BYTES_PER_ELEMENT, kernel_flops_of

#: StarPU's default STARPU_CALIBRATE_MINIMUM: a history entry with fewer samples is not used.
CALIBRATE_MINIMUM = 10

#: The profile's name of each kind of device, and back.
DEVICE_KINDS = {"cpu": DeviceKind.CPU, "gpu": DeviceKind.GPU}


Key = tuple[str, str]  # (kernel, device kind)


class InvalidObservations(ValueError):
    """Observations whose columns disagree in length or hold impossible values."""


@dataclass(frozen=True)
class Observations:
    """Columns of n executions: `kernel` (n,) str, `size` (n,) int64 tile edge b, `device` (n,)
    str kind of device, `seconds` (n,) float64 > 0."""

    kernel: np.ndarray
    size: np.ndarray
    device: np.ndarray
    seconds: np.ndarray

    def __post_init__(self) -> None:
        n = self.seconds.shape[0]
        if any(column.shape != (n,) for column in (self.kernel, self.size, self.device)):
            raise InvalidObservations("observations need one kernel, size and device per time")
        _check_sizes_and_times(self.size, self.seconds)
        unknown = set(self.device.tolist()) - set(DEVICE_KINDS)
        if unknown:
            raise InvalidObservations(f"unknown kinds of device {sorted(unknown)}")

    @classmethod
    def of(cls, kernel: str, size: ArrayLike, device: str, seconds: ArrayLike) -> Observations:
        """Executions of one kernel on one kind of device, one per (size, seconds)."""
        sizes = np.asarray(size, dtype=np.int64).reshape(-1)
        times = np.asarray(seconds, dtype=np.float64).reshape(-1)
        return cls(
            np.full(times.shape, kernel, dtype=object),
            sizes,
            np.full(times.shape, device, dtype=object),
            times,
        )

    @classmethod
    def concat(cls, parts: list[Observations]) -> Observations:
        return cls(
            *(
                np.concatenate([getattr(part, column) for part in parts])
                for column in ("kernel", "size", "device", "seconds")
            )
        )

    def take(self, rows: np.ndarray) -> Observations:
        """The observations at `rows` (indices), in that order."""
        return Observations(
            self.kernel[rows], self.size[rows], self.device[rows], self.seconds[rows]
        )

    @property
    def count(self) -> int:
        return int(self.seconds.shape[0])

    def groups(self) -> list[tuple[Key, np.ndarray]]:
        """((kernel, device), the indices of its observations), keys sorted: a fixed order."""
        keys = sorted(set(zip(self.kernel.tolist(), self.device.tolist(), strict=True)))
        return [
            (key, np.flatnonzero((self.kernel == key[0]) & (self.device == key[1]))) for key in keys
        ]


def _check_sizes_and_times(size: np.ndarray, seconds: np.ndarray) -> None:
    if np.any(size < 1):
        raise InvalidObservations("tile sizes must be >= 1")
    if not np.all(np.isfinite(seconds) & (seconds > 0)):
        raise InvalidObservations("times must be finite and > 0 seconds")


@dataclass(frozen=True)
class CodedObservations:
    """Observations as a run makes and stores them (db/perfmodels.add_observations): the names
    of the kernels and of the kinds of device once each, sorted, and per execution its indices
    into them (`kernel`, `device`), its tile size and its seconds. A run's 5,000 observations
    named one by one, then coded again to be stored, cost a worker ~1 ms a run (issue 23);
    `observations()` names them."""

    kernels: tuple[str, ...]
    kernel: np.ndarray  # (n,) int64 index into kernels
    size: np.ndarray  # (n,) int64
    devices: tuple[str, ...]
    device: np.ndarray  # (n,) int64 index into devices
    seconds: np.ndarray  # (n,) float64

    def __post_init__(self) -> None:
        _check_sizes_and_times(self.size, self.seconds)

    @property
    def count(self) -> int:
        return int(self.seconds.shape[0])

    def observations(self) -> Observations:
        kernels = np.asarray(self.kernels, dtype=object)
        devices = np.asarray(self.devices, dtype=object)
        return Observations(kernels[self.kernel], self.size, devices[self.device], self.seconds)


class PerformanceModel(Protocol):
    """What a scheduler asks: how long would this kernel take at these sizes on that kind of
    device? Seconds, NaN where the model is uncalibrated."""

    name: str

    def fit(self, observations: Observations) -> Self: ...

    def predict(self, kernel: str, sizes: ArrayLike, device: str) -> np.ndarray: ...

    def to_state(self) -> dict[str, Any]: ...


def _model_classes() -> dict[str, type[Any]]:
    return {
        "history": HistoryModel,
        "regression": RegressionModel,
        "nl_regression": NonLinearRegressionModel,
        "learned": LearnedModel,
    }


def make_model(name: str) -> PerformanceModel:
    """A fresh, unfitted model by its name (one of MODEL_NAMES), with its default parameters."""
    models = _model_classes()
    if name not in models:
        raise ValueError(f"unknown performance model {name!r}; one of {MODEL_NAMES}")
    model: PerformanceModel = models[name]()
    return model


def model_from_state(name: str, state: dict[str, Any]) -> PerformanceModel:
    """The model `name` as `to_state` stored it (a `learned` one without its estimator)."""
    if name not in _model_classes():
        raise ValueError(f"unknown performance model {name!r}; one of {MODEL_NAMES}")
    model: PerformanceModel = _model_classes()[name].from_state(state)
    return model


def _sizes(sizes: ArrayLike) -> np.ndarray:
    return np.asarray(sizes, dtype=np.float64)


@dataclass
class HistoryModel:
    """The mean time per (kernel, size, device kind), used from `minimum_samples` on."""

    minimum_samples: int = CALIBRATE_MINIMUM
    name: str = "history"
    _entries: dict[tuple[str, int, str], tuple[float, int]] = field(default_factory=dict)

    def fit(self, observations: Observations) -> Self:
        self._entries = {}
        for (kernel, device), rows in observations.groups():
            sizes = observations.size[rows]
            for size in np.unique(sizes):
                times = observations.seconds[rows[sizes == size]]
                self._entries[kernel, int(size), device] = (float(times.mean()), times.size)
        return self

    def samples(self, kernel: str, sizes: ArrayLike, device: str) -> np.ndarray:
        """How many observations each (kernel, size, device) entry holds; shape of `sizes`."""
        size = _sizes(sizes)
        counts = [
            self._entries.get((kernel, int(b), device), (0.0, 0))[1] if b == int(b) else 0
            for b in size.reshape(-1).tolist()
        ]
        return np.asarray(counts, dtype=np.int64).reshape(size.shape)

    def predict(self, kernel: str, sizes: ArrayLike, device: str) -> np.ndarray:
        size = _sizes(sizes)
        means = [
            self._entries.get((kernel, int(b), device), (np.nan, 0))[0] if b == int(b) else np.nan
            for b in size.reshape(-1).tolist()
        ]
        predicted = np.asarray(means, dtype=np.float64).reshape(size.shape)
        return np.where(
            self.samples(kernel, size, device) >= self.minimum_samples, predicted, np.nan
        )

    def to_state(self) -> dict[str, Any]:
        """{"minimum_samples", "entries": [[kernel, size, device, mean seconds, count], ...]}."""
        entries = [[*key, mean, count] for key, (mean, count) in sorted(self._entries.items())]
        return {"minimum_samples": self.minimum_samples, "entries": entries}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HistoryModel:
        model = cls(minimum_samples=int(state["minimum_samples"]))
        model._entries = {
            (str(kernel), int(size), str(device)): (float(mean), int(count))
            for kernel, size, device, mean, count in state["entries"]
        }
        return model


@dataclass
class RegressionModel:
    """t = a * b^p per (kernel, device kind), least squares in log space."""

    name: str = "regression"
    #: (kernel, device) -> (a seconds, p)
    coefficients: dict[Key, tuple[float, float]] = field(default_factory=dict)

    def fit(self, observations: Observations) -> Self:
        self.coefficients = {}
        for key, rows in observations.groups():
            fitted = _log_fit(observations.size[rows], observations.seconds[rows])
            if fitted is not None:
                self.coefficients[key] = fitted
        return self

    def predict(self, kernel: str, sizes: ArrayLike, device: str) -> np.ndarray:
        size = _sizes(sizes)
        if (kernel, device) not in self.coefficients:
            return np.full(size.shape, np.nan)
        a, p = self.coefficients[kernel, device]
        return np.asarray(a * size**p, dtype=np.float64)

    def to_state(self) -> dict[str, Any]:
        """{"coefficients": [[kernel, device, a, p], ...]}."""
        return _coefficients_state(self.coefficients)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RegressionModel:
        return cls(coefficients=_coefficients_of(state))  # type: ignore[arg-type]


def _coefficients_state(coefficients: Mapping[Key, tuple[float, ...]]) -> dict[str, Any]:
    return {"coefficients": [[*key, *values] for key, values in sorted(coefficients.items())]}


def _coefficients_of(state: dict[str, Any]) -> dict[Key, tuple[float, ...]]:
    return {
        (str(kernel), str(device)): tuple(float(value) for value in values)
        for kernel, device, *values in state["coefficients"]
    }


def _log_fit(sizes: np.ndarray, seconds: np.ndarray) -> tuple[float, float] | None:
    """(a, p) of ln t = ln a + p ln b by least squares; None with fewer than two sizes."""
    if np.unique(sizes).size < 2:
        return None
    p, ln_a = np.polyfit(np.log(sizes.astype(np.float64)), np.log(seconds), 1)
    return float(np.exp(ln_a)), float(p)


@dataclass
class NonLinearRegressionModel:
    """t = a * b^p + c per (kernel, device kind), c >= 0, non-linear least squares."""

    name: str = "nl_regression"
    #: (kernel, device) -> (a seconds, p, c seconds)
    coefficients: dict[Key, tuple[float, float, float]] = field(default_factory=dict)

    def fit(self, observations: Observations) -> Self:
        self.coefficients = {}
        for key, rows in observations.groups():
            sizes, seconds = observations.size[rows], observations.seconds[rows]
            if np.unique(sizes).size >= 3:
                self.coefficients[key] = _power_plus_constant(sizes, seconds)
        return self

    def predict(self, kernel: str, sizes: ArrayLike, device: str) -> np.ndarray:
        size = _sizes(sizes)
        if (kernel, device) not in self.coefficients:
            return np.full(size.shape, np.nan)
        a, p, c = self.coefficients[kernel, device]
        return np.asarray(a * size**p + c, dtype=np.float64)

    def to_state(self) -> dict[str, Any]:
        """{"coefficients": [[kernel, device, a, p, c], ...]}."""
        return _coefficients_state(self.coefficients)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NonLinearRegressionModel:
        return cls(coefficients=_coefficients_of(state))  # type: ignore[arg-type]


def _power_plus_constant(sizes: np.ndarray, seconds: np.ndarray) -> tuple[float, float, float]:
    """(a, p, c) minimising sum (a b^p + c - t)^2 with a >= 0, c >= 0.

    Sizes are scaled by the largest and times by the mean, so the solver works on numbers near 1
    whatever the units (times span 1e-6..1 s): t / T = A (b / B)^p + C, a = A T / B^p, c = C T.
    """
    scale_b, scale_t = float(sizes.max()), float(seconds.mean())
    x, y = sizes.astype(np.float64) / scale_b, seconds / scale_t
    start = _log_fit(sizes, seconds)
    assert start is not None  # three distinct sizes were checked by the caller
    a0, p0 = start[0] * scale_b ** start[1] / scale_t, start[1]
    (a, p, c), _ = curve_fit(
        lambda b, a, p, c: a * b**p + c,
        x,
        y,
        p0=(a0, p0, 0.0),
        bounds=((0.0, -np.inf, 0.0), (np.inf, np.inf, np.inf)),
        method="trf",
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
        max_nfev=10_000,
    )
    return float(a * scale_t / scale_b**p), float(p), float(c * scale_t)


@dataclass
class LearnedModel:
    """The retrain's estimator (training.fit with `params`) on kernel calls as tasks."""

    params: FitParams = field(default_factory=FitParams)
    name: str = "learned"
    estimator: Any = None

    def fit(self, observations: Observations) -> Self:
        """Fit on the observations; with none, stay unfitted (NaN everywhere)."""
        if observations.count == 0:
            self.estimator = None
            return self
        features = kernel_features(observations.kernel, observations.size, observations.device)
        kinds = np.array([DEVICE_KINDS[d] for d in observations.device.tolist()], np.int16)
        samples = Samples(
            features, kinds, observations.seconds, np.full(observations.count, np.nan)
        )
        self.estimator = fit(samples, self.params)
        return self

    def predict(self, kernel: str, sizes: ArrayLike, device: str) -> np.ndarray:
        size = _sizes(sizes)
        if self.estimator is None:
            return np.full(size.shape, np.nan)
        flat = size.reshape(-1)
        features = kernel_features(
            np.full(flat.shape, kernel, dtype=object), flat, np.full(flat.shape, device, object)
        )
        seconds = np.exp(ln_seconds(features, self.estimator.predict(features)))
        return np.asarray(seconds, dtype=np.float64).reshape(size.shape)

    def to_state(self) -> dict[str, Any]:
        """{"params": FitParams}: the estimator is an artifact of its own (module docstring)."""
        return {"params": self.params.as_dict()}

    @classmethod
    def from_state(cls, state: dict[str, Any], estimator: Any = None) -> LearnedModel:
        return cls(params=FitParams(**state["params"]), estimator=estimator)


_DEFAULT_DEVICES = device_features(Cluster.homogeneous_kinds(1, 1))  # row 0 CPU, row 1 GPU


def kernel_features(kernel: np.ndarray, size: np.ndarray, device: np.ndarray) -> np.ndarray:
    """features.FEATURE_NAMES of kernel calls (module docstring), shape (n, 10)."""
    b = np.asarray(size, dtype=np.float64)
    flops = np.empty(b.shape)
    memory_mb = np.empty(b.shape)
    for name in np.unique(kernel).tolist():
        calls = kernel == name
        flops[calls] = kernel_flops_of(name, b[calls])
        memory_mb[calls] = TILES_TOUCHED[name] * b[calls] ** 2 * BYTES_PER_ELEMENT / 1e6
    codes = dict(
        zip(np.unique(kernel).tolist(), category_codes(tuple(np.unique(kernel))), strict=True)
    )
    rows = np.array([int(DEVICE_KINDS[d]) for d in device.tolist()], dtype=np.int64)
    return np.column_stack(
        [
            np.log(np.maximum(flops / 1e9, 1e-6)),
            np.ones(b.shape),
            np.log1p(memory_mb),
            np.zeros(b.shape),
            np.array([codes[k] for k in kernel.tolist()], dtype=np.float64),
            _DEFAULT_DEVICES[rows],
        ]
    )


def observed(problem: Problem, schedule: Schedule) -> Observations:
    """What a run's executions teach the models: for each task that ran whole and calls a
    profiled kernel, its kernel's time on the kind of device it ran on — the task's true time
    there (`problem`: the scenario's truth) less the staging of its input (predicted.py charges
    staging from the link, not the model). Split tasks teach nothing (neither part ran the whole
    call). Raises ValueError if the workload's tasks call no kernel."""
    tasks = np.flatnonzero(schedule.partner < 0)
    return _executions(problem, tasks, schedule.device[tasks])


def _executions(problem: Problem, tasks: np.ndarray, devices: np.ndarray) -> Observations:
    """The observations of `tasks` run whole on `devices` (indices into the cluster), in order."""
    return _coded_executions(problem, tasks, devices).observations()


def _coded_executions(
    problem: Problem, tasks: np.ndarray, devices: np.ndarray
) -> CodedObservations:
    """_executions, coded: each kernel and kind of device named once."""
    workload, cluster = problem.workload, problem.cluster
    if workload.tile_size is None:
        raise ValueError("the workload's tasks call no profiled kernel: nothing was observed")
    moving = transfer_times_of(workload, cluster, tasks, devices)
    kernels, kernel = _named_codes(workload.category[tasks], workload.category_names)
    kind_names = [DEVICE_NAMES[DeviceKind(int(kind))] for kind in cluster.kind]
    kinds, kind = _named_codes(devices, kind_names)
    return CodedObservations(
        kernels,
        kernel,
        workload.tile_size[tasks].astype(np.int64),
        kinds,
        kind,
        problem.exec_time[tasks, devices] - moving,
    )


def _named_codes(values: np.ndarray, names: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """The distinct names of `values` (indices into `names`), sorted, and each value's index
    into them."""
    used, inverse = np.unique(values, return_inverse=True)
    distinct = sorted({names[int(value)] for value in used})
    position = {name: index for index, name in enumerate(distinct)}
    recode = np.array([position[names[int(value)]] for value in used], dtype=np.int64)
    return tuple(distinct), recode[inverse.reshape(-1)]


def observed_once(problem: Problem, schedules: list[Schedule], limit: int) -> CodedObservations:
    """What several schedules of one run teach, each (task, kind of device) once: the policies
    execute the same drawn truth, so a task run on the same kind again is the same draw, not a
    new observation. At most `limit` observations, spread evenly over the (task, kind) order:
    the same run keeps the same ones. The choice is made on integer codes (a 30,000-task run
    has ~90,000 executions), and the chosen ones are kept coded (CodedObservations)."""
    code = {name: index for index, name in enumerate(DEVICE_KINDS)}
    kinds = problem.cluster.kind
    kind_of_device = np.asarray([code[DEVICE_NAMES[DeviceKind(int(k))]] for k in kinds])
    whole = [np.flatnonzero(schedule.partner < 0) for schedule in schedules]
    tasks = np.concatenate(whole).astype(np.int64)
    devices = np.concatenate([s.device[t] for s, t in zip(schedules, whole, strict=True)])
    # The first execution of each (task, kind), in (task, kind) order: a table over (task,
    # kind) written by the schedules from the last to the first, so the first's rows stay (a
    # schedule runs each task whole at most once). np.unique's sort did the same in ~0.5 ms.
    key = tasks * len(DEVICE_KINDS) + kind_of_device[devices]
    first = np.full(problem.num_tasks * len(DEVICE_KINDS), -1, dtype=np.int64)
    starts = np.cumsum([0, *(len(t) for t in whole)])
    for start, end in reversed(list(itertools.pairwise(starts))):
        first[key[start:end]] = np.arange(start, end)
    rows = first[first >= 0]
    if rows.size > limit:
        rows = rows[np.linspace(0, rows.size - 1, limit).astype(np.int64)]
    return _coded_executions(problem, tasks[rows], devices[rows])
