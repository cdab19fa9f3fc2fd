"""A schedule as rows people read: device names instead of indices. Used by the API (JSON, CSV)
and by `hms simulate --schedule`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from app.sim.schedule import Schedule

COLUMNS = ("task", "device", "partner", "gpu_fraction", "start", "end")


def schedule_rows(
    devices: list[str], schedule: Schedule, tasks: Iterable[int] | None = None
) -> Iterator[dict[str, Any]]:
    for task in range(schedule.num_tasks) if tasks is None else tasks:
        partner = int(schedule.partner[task])
        yield {
            "task": task,
            "device": devices[int(schedule.device[task])],
            "partner": devices[partner] if partner >= 0 else None,
            "gpu_fraction": float(schedule.gpu_fraction[task]),
            "start": float(schedule.start[task]),
            "end": float(schedule.end[task]),
        }


def schedule_csv(devices: list[str], schedule: Schedule, policy: str | None = None) -> str:
    """CSV with a header; a `policy` column first when `policy` is given."""
    buffer = io.StringIO()
    columns = ("policy", *COLUMNS) if policy else COLUMNS
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in schedule_rows(devices, schedule):
        writer.writerow({"policy": policy, **row} if policy else row)
    return buffer.getvalue()
