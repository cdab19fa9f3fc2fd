"""Imported by bench/study.py's workers (`celery worker --include simclock`, with bench/hooks/ on
PYTHONPATH): every run's simulation appends its CPU seconds to the file $HMS_BENCH_SIMCLOCK, so
that the bench subtracts the simulation as it ran in the study. Measured apart, minutes later, it
was off by as much as the changes the bench measures: this machine's speed drifts by 10-20 %
from one minute to the next. Imported before the pool forks, so every pool process has it."""

from __future__ import annotations

import os
import time
from typing import Any

from app.services import runs

_simulate = runs.simulate_spec


def _clocked(*args: Any, **kwargs: Any) -> Any:
    started = time.process_time()
    try:
        return _simulate(*args, **kwargs)
    finally:
        with open(os.environ["HMS_BENCH_SIMCLOCK"], "a") as clock:
            clock.write(f"{time.process_time() - started!r}\n")


runs.simulate_spec = _clocked
