"""Capping a pool process's memory, so that a run past its estimate fails alone.

The cap is on address space (RLIMIT_AS), set once in each pool process at the process's
footprint plus the run budget: an allocation past it raises MemoryError in that process (numpy's,
and numba's NRT in compiled code), the run fails with that error, and the process and its
neighbours carry on. Without it the kernel's OOM killer ended a 15 GB pool process after minutes
of swapping, and the redelivered run did it again. Address space, not resident memory: the
engine's arrays are touched as soon as they are allocated, so its growth during a run followed
the resident set's within 12 MB in every run measured (docs/guarantees.md), and numba and LLVM's
reservations happen before the fork (warm_up), inside the footprint.
"""

from __future__ import annotations

import resource

from app.settings import get_settings


def address_space_mb() -> float:
    """This process's virtual size now (MB), from /proc/self/status (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def peak_resident_mb() -> float:
    """This process's peak resident set so far (MB): the kernel's high-water mark (ru_maxrss,
    KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cap_memory() -> int:
    """Cap this process's address space at its footprint plus the run budget; the cap (MB)."""
    cap_mb = int(address_space_mb()) + get_settings().run_memory_budget_mb
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = cap_mb * 2**20 if hard == resource.RLIM_INFINITY else min(cap_mb * 2**20, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return cap_mb
