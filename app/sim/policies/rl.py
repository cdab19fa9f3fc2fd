"""A learning agent in numpy: one-step reinforcement learning (a contextual bandit).

State: the task's features x = (1, ln size, intensity, ln(1 + memory), intensity * ln size) and,
per action, how long the task would wait for the action's devices (known from the queues).
Actions: `cpu` (the earliest available CPU core), `gpu` (the earliest available GPU), `split`
(both, sharing the task at the f* its own predictions give; offered only when both are idle, see
splits.py). Reward: minus the task's flow contribution, -(end - ready): the agent picks the action
with the least predicted wait + duration, where the duration is exp(w_a . x) learned per action
by recursive least squares on the observed ln durations, exploring with
probability eps_t = max(0.02, 0.3 / (1 + t / 500)). Discount 0: a placement's reward is known as
soon as it is committed, and the agent learns across the tasks of a run. Its parameters
(`state()`) are plain JSON and can seed the next run (`Rl(state)`). The decisions and updates run
in the engine's compiled loop (kernel.py); this class owns the parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.sim.decision import BanditArrays, Decision, Rule
from app.sim.policies.base import Policy
from app.sim.problem import Problem

ACTIONS = ("cpu", "gpu", "split")
FEATURES = ("bias", "ln_size", "intensity", "ln1p_memory", "intensity_x_ln_size")
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
    knows = "the durations it has observed"

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        k = len(FEATURES)
        self.weights = np.zeros((len(ACTIONS), k))
        self.covariance = np.stack([np.eye(k) * INITIAL_COVARIANCE] * len(ACTIONS))
        self.steps = 0
        if state is not None:
            self._load(state)

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        workload = problem.workload
        bandit = BanditArrays(
            features=task_features(workload.size, workload.intensity, workload.memory),
            explore_draws=rng.random(problem.num_tasks),
            action_draws=rng.random(problem.num_tasks),
            weights=self.weights,  # updated in place as the agent learns
            covariance=self.covariance,
        )
        self._start_steps = self.steps
        return Decision(Rule.BANDIT, bandit=bandit)

    def finished(self, problem: Problem) -> None:
        self.steps = self._start_steps + problem.num_tasks

    def predicted_duration(self, action: str, features: np.ndarray) -> np.ndarray:
        """The agent's current belief of ln seconds for tasks with these features."""
        return features @ self.weights[ACTIONS.index(action)]

    def state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "features": list(FEATURES),
            "steps": self.steps,
            "weights": {a: self.weights[i].tolist() for i, a in enumerate(ACTIONS)},
            "covariance": {a: self.covariance[i].tolist() for i, a in enumerate(ACTIONS)},
        }

    def _load(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION or state.get("features") != list(FEATURES):
            raise ValueError("rl state was saved by an incompatible agent version")
        k = len(FEATURES)
        for i, action in enumerate(ACTIONS):
            weights = np.asarray(state["weights"][action], dtype=np.float64)
            covariance = np.asarray(state["covariance"][action], dtype=np.float64)
            if weights.shape != (k,) or covariance.shape != (k, k):
                raise ValueError("rl state has arrays of the wrong shape")
            self.weights[i], self.covariance[i] = weights, covariance
        self.steps = int(state["steps"])


def merge_learning(
    newest: dict[str, Any], start: dict[str, Any] | None, learned: dict[str, Any]
) -> dict[str, Any]:
    """`newest` plus what one run learned going from `start` (None: a fresh agent) to `learned`:
    how a run's learning is saved when another run saved a version after this one started.

    Recursive least squares without forgetting (kernel._rls_update) keeps, per action, the
    information matrix P^-1 = P0^-1 + sum x x^T and the vector P^-1 w = sum x y, both sums over
    the observations seen (Haykin, *Adaptive Filter Theory*, 4th ed., 2002, sec. 9.3). A run's
    learning is then (learned - start) in those sums, and adding it to `newest` gives the state
    the agent would have after seeing both runs' observations, in any order (exact but for
    rounding): two concurrent runs each add their learning, none is lost."""
    merged, before, after = Rl(newest), Rl(start), Rl(learned)
    for i in range(len(ACTIONS)):
        information = np.zeros((len(FEATURES), len(FEATURES)))
        vector = np.zeros(len(FEATURES))
        for agent, sign in ((merged, 1.0), (after, 1.0), (before, -1.0)):
            inverse = np.linalg.inv(agent.covariance[i])
            information += sign * inverse
            vector += sign * (inverse @ agent.weights[i])
        covariance = np.linalg.inv(information)
        merged.covariance[i] = (covariance + covariance.T) / 2  # symmetric, as RLS keeps it
        merged.weights[i] = np.linalg.solve(information, vector)
    merged.steps += after.steps - before.steps
    return merged.state()
