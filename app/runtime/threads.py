"""How many native threads (OpenMP, BLAS) a process may use, and applying that limit.

scikit-learn's tree models predict and train on OpenMP threads, one per core by default. OpenMP
threads wait for each other at every parallel region by spinning, so when there are more of
them than free cores, each region waits for a descheduled thread's next time slice: on a 2-core
VM, a `learned` run that takes 0.05 s on one thread took 1-12 s on two threads while another
process trained a model on its own OpenMP threads, and training the bootstrap model went from
2.7 s to 15-131 s (bench/coldstart.py measures a whole run beside such a process). A worker's pool
processes are such neighbours of each other, so together they must not ask for more threads than
there are cores; a process that does not know its neighbours (`hms simulate`) assumes one.
"""

from __future__ import annotations

import os
from typing import Any

from threadpoolctl import threadpool_limits

from app.settings import get_settings

#: Processes a standalone process (`hms simulate`, a benchmark) assumes share the cores: itself
#: and one other busy process.
STANDALONE_PROCESSES = 2


def native_threads(cores: int, processes: int, override: int = 0) -> int:
    """Threads per process so that `processes` busy processes fit on `cores` cores: at least
    one; `override` (> 0) wins."""
    if override > 0:
        return override
    return max(1, cores // max(1, processes))


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset
    restrict), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def limit_native_threads(processes: int = STANDALONE_PROCESSES) -> Any:
    """Limit this process's OpenMP and BLAS thread pools to its share of the cores among
    `processes` busy ones (or to `Settings.native_threads`, when set); returns the threadpoolctl
    limiter, whose `restore_original_limits()` undoes it. Call it after importing scikit-learn
    and numpy: threadpoolctl reaches only the native libraries already loaded."""
    threads = native_threads(available_cores(), processes, get_settings().native_threads)
    return threadpool_limits(limits=threads)
