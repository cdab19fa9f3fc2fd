"""Features of a (task, device) pair, the inputs of every performance model.

Task: ln size (GFLOP), intensity, ln(1 + memory MB), ln(1 + data from parents MB), and its
category as a number: the hashing trick, a stable hash of the category's name mapped to [0, 1),
so the same category has the same value in every run and process without a vocabulary to keep,
and trees can cut out each category with a few splits (a new category lands beside some known
one: the model guesses, as it must).
Device: kind (0 CPU, 1 GPU), ln speed and ln scalar speed (GFLOP/s), ln bandwidth (MB/s, capped
at 1e9 for "host memory"), ln latency (s, floored at 1e-9).
"""

from __future__ import annotations

import hashlib

import numpy as np

from app.sim.cluster import Cluster
from app.sim.workload import Workload

TASK_FEATURES = ("ln_size", "intensity", "ln1p_memory", "ln1p_input_data", "category_code")
DEVICE_FEATURES = ("is_gpu", "ln_speed", "ln_scalar_speed", "ln_bandwidth", "ln_latency")
FEATURE_NAMES = TASK_FEATURES + DEVICE_FEATURES


def task_features(workload: Workload, tasks: np.ndarray | None = None) -> np.ndarray:
    """Shape (num_tasks, len(TASK_FEATURES)); of the `tasks` only (indices), if given: the same
    values as those rows of all tasks' features, bit for bit, without computing the others (a
    run samples 1,000 of its tasks for training)."""
    chosen = slice(None) if tasks is None else tasks
    child = np.repeat(np.arange(workload.num_tasks), np.diff(workload.parent_ptr))
    input_data = np.bincount(child, weights=workload.edge_data, minlength=workload.num_tasks)
    return np.column_stack(
        [
            np.log(np.maximum(workload.size[chosen], 1e-6)),
            workload.intensity[chosen],
            np.log1p(workload.memory[chosen]),
            np.log1p(input_data[chosen]),
            category_codes(workload.category_names)[workload.category[chosen]],
        ]
    )


def category_codes(names: tuple[str, ...]) -> np.ndarray:
    """Each category name's code in [0, 1): the first 8 bytes of its sha256 / 2**64."""
    return np.array(
        [int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") / 2.0**64
         for name in names]
    )  # fmt: skip


def device_features(cluster: Cluster) -> np.ndarray:
    """Shape (num_devices, len(DEVICE_FEATURES))."""
    return np.column_stack(
        [
            cluster.kind.astype(np.float64),
            np.log(cluster.speed),
            np.log(cluster.scalar_speed),
            np.log(np.minimum(cluster.bandwidth, 1e9)),
            np.log(np.maximum(cluster.latency, 1e-9)),
        ]
    )


def target(features: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """What models learn: ln(seconds per GFLOP). Execution time grows with size, so learning the
    time per unit of work keeps a task larger than any seen in training from being extrapolated
    (trees predict a constant beyond the data); ln seconds = target + ln size."""
    return np.log(np.maximum(seconds, 1e-12)) - features[:, 0]


def ln_seconds(features: np.ndarray, predicted_target: np.ndarray) -> np.ndarray:
    return predicted_target + features[:, 0]


def pair_features(tasks: np.ndarray, device: np.ndarray) -> np.ndarray:
    """Every task paired with one device: shape (num_tasks, len(FEATURE_NAMES))."""
    return np.hstack([tasks, np.broadcast_to(device, (tasks.shape[0], device.shape[0]))])


def pairs_of(tasks: np.ndarray, devices: np.ndarray) -> np.ndarray:
    """Every task paired with every device, device first (the first device with each task, then
    the second...): shape (len(devices) * num_tasks, len(FEATURE_NAMES)); the rows of one device
    are pair_features(tasks, that device)."""
    return np.hstack([np.tile(tasks, (devices.shape[0], 1)), np.repeat(devices, tasks.shape[0], 0)])
