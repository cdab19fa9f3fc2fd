"""A learning agent in numpy: one-step reinforcement learning (a contextual bandit).

State: the task's features x = (1, ln size, intensity, ln(1 + memory), intensity * ln size) and,
per action, how long the task would wait for the action's devices (known from the queues).
Actions: `cpu` (the earliest available CPU core), `gpu` (the earliest available GPU), `split`
(both, sharing the task at the f* its own predictions give; offered only when both are idle, see
splits.py). Reward: minus the task's flow
contribution, -(end - ready): the agent picks the action with the least predicted
wait + duration, where the duration is exp(w_a . x) learned per action by recursive least squares
on the observed ln durations (forgetting factor 0.999), exploring with probability
eps_t = max(0.02, 0.3 / (1 + t / 500)). Discount 0: a placement's reward is known as soon as it
is committed, and the agent learns across the tasks of a run. Its parameters (`state()`) are
plain JSON and can seed the next run (`Rl(state)`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.sim import costs
from app.sim.engine import Engine, Placement, Split
from app.sim.policies.base import Policy
from app.sim.problem import Problem

ACTIONS = ("cpu", "gpu", "split")
FEATURES = ("bias", "ln_size", "intensity", "ln1p_memory", "intensity_x_ln_size")
FORGETTING = 0.999
INITIAL_COVARIANCE = 100.0
STATE_VERSION = 1


def task_features(size: np.ndarray, intensity: np.ndarray, memory: np.ndarray) -> np.ndarray:
    ln_size = np.log(np.maximum(size, 1e-6))
    return np.column_stack(
        [np.ones_like(size), ln_size, intensity, np.log1p(memory), intensity * ln_size]
    )


class Rl(Policy):
    name = "rl"
    summary = "numpy contextual-bandit agent learning cpu/gpu/split durations as it places"

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        k = len(FEATURES)
        self.weights = {a: np.zeros(k) for a in ACTIONS}
        self.covariance = {a: np.eye(k) * INITIAL_COVARIANCE for a in ACTIONS}
        self.steps = 0
        if state is not None:
            self._load(state)

    def prepare(self, problem: Problem, engine: Engine, rng: np.random.Generator) -> None:
        super().prepare(problem, engine, rng)
        workload = problem.workload
        self._x = task_features(workload.size, workload.intensity, workload.memory)
        self._cpus, self._gpus = problem.cluster.cpus, problem.cluster.gpus
        self._chosen: tuple[str, np.ndarray] | None = None

    def place(self, task: int, ready: np.ndarray) -> Placement:
        options = self._options(task, ready)
        epsilon = max(0.02, 0.3 / (1.0 + self.steps / 500.0))
        if self.rng.random() < epsilon:
            action = list(options)[int(self.rng.integers(len(options)))]
        else:
            action = min(options, key=lambda a: options[a][1])
        self._chosen = (action, self._x[task])
        return options[action][0]

    def placed(self, task: int) -> None:
        assert self._chosen is not None
        action, x = self._chosen
        duration = float(self.engine.end[task] - self.engine.start[task])
        self._update(action, x, np.log(max(duration, 1e-9)))
        self.steps += 1

    def _options(self, task: int, ready: np.ndarray) -> dict[str, tuple[Placement, float]]:
        """Per available action: the placement and its predicted finish time."""
        x = self._x[task]
        feasible = self.problem.feasible[task]
        predicted = {a: float(np.exp(np.clip(self.weights[a] @ x, -30, 30))) for a in ACTIONS}
        available = np.maximum(ready, self.engine.free_at)
        options: dict[str, tuple[Placement, float]] = {}
        for action, devices in (("cpu", self._cpus), ("gpu", self._gpus)):
            fitting = devices[feasible[devices]]
            if fitting.size:
                device = int(fitting[np.argmin(available[fitting])])
                options[action] = (device, available[device] + predicted[action])
        if "cpu" in options and "gpu" in options and self.problem.splittable:
            cpu, gpu = int(options["cpu"][0]), int(options["gpu"][0])  # type: ignore[arg-type]
            split = self._split(task, gpu, cpu, predicted)
            start = self.engine.split_start(ready, gpu, cpu)
            if split is not None and start <= max(ready[gpu], ready[cpu]):  # both idle
                options["split"] = (split, start + predicted["split"])
        return options

    def _split(self, task: int, gpu: int, cpu: int, predicted: dict[str, float]) -> Split | None:
        low, high = costs.fraction_bounds(
            self.problem.workload.memory[task : task + 1],
            float(self.problem.cluster.memory[cpu]),
            float(self.problem.cluster.memory[gpu]),
        )
        latency = float(self.problem.cluster.latency[gpu])
        share = float(
            costs.best_fraction(predicted["cpu"], predicted["gpu"], latency, low, high)[0]
        )
        return Split(gpu, cpu, share) if 0 < share < 1 and low[0] <= high[0] else None

    def _update(self, action: str, x: np.ndarray, target: float) -> None:
        w, p = self.weights[action], self.covariance[action]
        px = p @ x
        gain = px / (FORGETTING + x @ px)
        self.weights[action] = w + gain * (target - w @ x)
        self.covariance[action] = (p - np.outer(gain, px)) / FORGETTING

    def state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "features": list(FEATURES),
            "steps": self.steps,
            "weights": {a: self.weights[a].tolist() for a in ACTIONS},
            "covariance": {a: self.covariance[a].tolist() for a in ACTIONS},
        }

    def _load(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION or state.get("features") != list(FEATURES):
            raise ValueError("rl state was saved by an incompatible agent version")
        k = len(FEATURES)
        for action in ACTIONS:
            weights = np.asarray(state["weights"][action], dtype=np.float64)
            covariance = np.asarray(state["covariance"][action], dtype=np.float64)
            if weights.shape != (k,) or covariance.shape != (k, k):
                raise ValueError("rl state has arrays of the wrong shape")
            self.weights[action], self.covariance[action] = weights, covariance
        self.steps = int(state["steps"])
