"""What the simulated hardware really does: the true execution times the engine runs on.

The cost model (costs.py) is what a user computes from task sizes and datasheet speeds: the
*nominal estimate*. Real hardware departs from it in ways that are systematic, and so learnable,
plus noise. For task i (work S_i GFLOP, input data M_i MB, category c_i) on device d of kind k:

    compute(i, d)   = S_i * (p_i / R_d + (1 - p_i) / r_d)            the nominal compute time
    achieved(i, d)  = compute(i, d) / eff(c_i, k)                     below peak for its category
    memory(i, d)    = M_i / (1000 * BW_d)                             streaming its data once
    truth(i, d)     = (max(achieved(i, d), memory(i, d)) + transfer(i, d)) * noise(i, d)

- **Roofline** (Williams, Waterman & Patterson, "Roofline", CACM 52(4), 2009): a kernel runs at
  min(peak, arithmetic intensity x memory bandwidth). A task moving M_i MB for S_i GFLOP is
  memory-bound on d when M_i / S_i exceeds the balance point of the rate it achieves there,
  1000 * BW_d / (R_d * eff) (MB per GFLOP, for a fully data-parallel task): its time is then
  M_i / BW_d, not its compute time. M_i is the compulsory
  traffic (every input byte read once); kernels that re-read data are slower still, which their
  category's efficiency carries. BW_d is `memory_bandwidth` (GB/s, cluster.py).
- **Efficiency per category and kind of device**: eff(c, k) is log-uniform in [low_k, 1], drawn
  per (hardware seed, category name, kind): the same category runs alike in every workload on
  the same hardware (that is what a model can learn), and the draw does not depend on which other
  categories a workload has. Ranges: GPU [0.05, 1], CPU core [0.5, 1]. The GPU range follows
  Lee et al., "Debunking the 100X GPU vs. CPU myth" (ISCA 2010): on 14 throughput kernels a
  GTX 280 beat a Core i7-960 by 0.5x to 14.9x while its peak was about 9x the CPU's, so kernels
  reach anywhere from ~5 % to all of the GPU's peak advantage. The CPU range is narrower by
  assumption: the nominal core speed (40 GFLOP/s) is already a sustained rate well under a core's
  vector peak, so a kernel loses less against it.
- **Noise**: log-normal with sigma `noise_sigma` (default 0.1) and mean 1,
  exp(sigma z - sigma^2 / 2), one draw per (task, device model) from the run's seed: every policy
  meets the same realisation (a fair contest), identical devices behave alike (so the engine's
  per-model shortcuts stay exact), and the same spec and seed give the same times anywhere.

Explicit cost tables are exact: the literature's problems state the times, so truth = estimate.
When the cluster names a kernel profile, measured.py replaces this truth with measured times.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from app.sim import costs
from app.sim.cluster import Cluster, DeviceKind
from app.sim.workload import Workload

#: The lowest efficiency a category can have on each kind of device (the highest is 1).
LOWEST_EFFICIENCY = {DeviceKind.CPU: 0.5, DeviceKind.GPU: 0.05}


@dataclass(frozen=True)
class Hardware:
    """The parameters of the truth: `seed` fixes each category's efficiency on each kind of
    device (a property of the hardware, shared by every run on it), `noise_sigma` the spread of
    per-execution noise (natural-log scale)."""

    seed: int = 0
    noise_sigma: float = 0.1


def category_efficiency(names: tuple[str, ...], seed: int) -> np.ndarray:
    """eff(c, k) for each category name and kind (CPU, GPU): shape (len(names), 2), in (0, 1]."""
    table = np.empty((len(names), len(DeviceKind)))
    for row, name in enumerate(names):
        for kind in DeviceKind:
            digest = hashlib.sha256(f"{seed}:{kind.name}:{name}".encode()).digest()
            draw = np.random.default_rng(int.from_bytes(digest[:8], "little")).random()
            table[row, kind] = float(np.exp(np.log(LOWEST_EFFICIENCY[kind]) * (1.0 - draw)))
    return table


def memory_time(workload: Workload, cluster: Cluster) -> np.ndarray:
    """Seconds to stream each task's input once at each device's memory bandwidth, (n, m)."""
    return workload.memory[:, None] / (1000.0 * cluster.memory_bandwidth[None, :])


def systematic_time(workload: Workload, cluster: Cluster, hardware: Hardware) -> np.ndarray:
    """The truth without noise, seconds, shape (num_tasks, num_devices)."""
    if workload.explicit:
        return costs.execution_time(workload, cluster)
    efficiency = category_efficiency(workload.category_names, hardware.seed)
    eff = efficiency[workload.category[:, None], cluster.kind.astype(np.int64)[None, :]]
    achieved = costs.compute_time(workload, cluster) / eff
    return np.maximum(achieved, memory_time(workload, cluster)) + costs.transfer_time(
        workload, cluster
    )


def noise(
    workload: Workload, cluster: Cluster, sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """Mean-one log-normal factors, one per (task, device model), shape (num_tasks, devices)."""
    factors = np.ones((workload.num_tasks, cluster.num_devices))
    if sigma <= 0:
        return factors
    for group in cluster.model_groups(np.arange(cluster.num_devices)):
        draw = rng.standard_normal(workload.num_tasks)
        factors[:, group] = np.exp(sigma * draw - sigma**2 / 2.0)[:, None]
    return factors


def true_execution_time(
    workload: Workload,
    cluster: Cluster,
    hardware: Hardware,
    rng: np.random.Generator,
    systematic: np.ndarray | None = None,
) -> np.ndarray:
    """What each task really takes on each device, seconds, shape (num_tasks, num_devices);
    `systematic` is systematic_time's result when the caller has it."""
    if systematic is None:
        systematic = systematic_time(workload, cluster, hardware)
    if workload.explicit:
        return systematic
    return systematic * noise(workload, cluster, hardware.noise_sigma, rng)
