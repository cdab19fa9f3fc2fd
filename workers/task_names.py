"""The tasks' names: workers/tasks.py declares each task with its name from here, and
workers/queue.py sends messages by these names. The queue cannot import the tasks (the tasks
import the queue to send runs), so the names live beside both."""

from __future__ import annotations

from typing import Final

RUN_SIMULATION: Final = "hms.run_simulation"
RUN_SIMULATIONS: Final = "hms.run_simulations"
FAN_OUT_STUDY: Final = "hms.fan_out_study"
RETRAIN_MODEL: Final = "hms.retrain_model"
NIGHTLY_RETRAIN: Final = "hms.nightly_retrain"
RETRAIN_IF_DUE: Final = "hms.retrain_if_due"
SWEEP: Final = "hms.sweep"
APPLY_RETENTION: Final = "hms.apply_retention"
PURGE_STUDY: Final = "hms.purge_study"
