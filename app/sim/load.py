"""The offered load of an online workload, and arrivals that produce a given one.

**Service capacity** of a cluster for a task mix: the most tasks per second it could complete in
a steady state, mu = n / F, where F is the fluid time of the n tasks (bounds.py): the least time
in which the cluster's device groups could do all their work, each task's work shared between
the groups as favourably as possible, on the mean of the hardware's *true* times (for a kernel
profile, each kernel's measured mean time at its size: measured.py; for tasks with no kernel, the
cost model's times, which are their truth). **Offered load** rho = arrival rate / mu: at rho = 1
even a perfect placement keeps every device busy all the time; below it a perfect placement
would leave each device idle a share 1 - rho of the time, and a placement that puts tasks on
devices slow for them turns the same arrivals into more work, a higher achieved utilization and
longer queues.
"""

from __future__ import annotations

import numpy as np

from app.sim.bounds import fluid_time
from app.sim.cluster import Cluster
from app.sim.costs import fits
from app.sim.workload import Workload


def service_capacity(workload: Workload, cluster: Cluster, times: np.ndarray) -> float:
    """mu, tasks per second (module docstring); `times` the mean true times, seconds, shape
    (num_tasks, num_devices)."""
    groups = cluster.model_groups(np.arange(cluster.num_devices))
    seconds = fluid_time(times, fits(workload, cluster), groups)
    return workload.num_tasks / seconds if seconds > 0 else float("inf")


def at_load(workload: Workload, cluster: Cluster, load: float, times: np.ndarray) -> Workload:
    """`workload` with its arrival times scaled so the arrival rate is `load` x mu (`times` as
    service_capacity takes them). Its arrivals must have been drawn at rate 1 (one task per
    second on average)."""
    rate = load * service_capacity(workload, cluster, times)
    return workload.evolve(arrival=workload.arrival / rate)
