"""What measured a profile: this machine's CPU, its cores and the libraries (the provenance block
of a kernel profile; app/cli/measure/gpu.py adds a GPU's)."""

from __future__ import annotations

import datetime
import platform
import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from threadpoolctl import threadpool_info

from app.runtime.threads import available_cores


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def scipy_blas() -> str:
    """The BLAS SciPy's wrappers call (threadpoolctl sees it once scipy.linalg is imported)."""
    import scipy.linalg.blas  # noqa: F401  (loads SciPy's BLAS so threadpoolctl lists it)

    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    # SciPy's wheels bundle their own OpenBLAS in scipy.libs/ (NumPy's sits in numpy.libs/).
    own = [p for p in pools if Path(str(p.get("filepath", ""))).parent.name == "scipy.libs"]
    own = own or pools
    if not own:
        return "unknown"
    pool = own[0]
    detail = ", ".join(str(pool[k]) for k in ("architecture", "threading_layer") if pool.get(k))
    return f"{pool.get('internal_api', 'blas')} {pool.get('version', '?')} ({detail})"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def default_name(gpu: str | None = None) -> str:
    """A profile name for this machine: its CPU model and core count, and the GPU's model where
    one is measured, as a profile id (at most 64 characters)."""
    cpu = f"{_slug(cpu_model())[:56] or 'cpu'}-{available_cores()}c"
    if not gpu:
        return cpu
    gpu_slug = _slug(gpu)[:24] or "gpu"
    return f"{cpu[: 63 - len(gpu_slug)].strip('-')}-{gpu_slug}"


def provenance(command: str) -> dict[str, Any]:
    """The provenance block of a profile measured now on this machine by `command`."""
    cores = available_cores()
    return {
        "source": "measured",
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "machine": {
            "cpu": f"{cpu_model()} ({cores} cores visible)",
            "gpu": None,
            "cores": cores,
            "os": f"{platform.system()} {platform.release()}",
        },
        "libraries": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "blas": scipy_blas(),
            "cupy": None,
        },
        "command": command,
        "citation": None,
    }
