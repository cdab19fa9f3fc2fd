"""Workloads from files other people wrote: WfCommons instances (real scientific workflows), the
Standard Task Graph Set, and plain records or CSV for hand-made examples.

Every importer is a pure function from parsed text or JSON to a `Workload`, and reports anything
malformed as `InvalidWorkload`, naming the task, line or record at fault.
"""

from app.sim.importers.inline import workload_from_csv, workload_from_records
from app.sim.importers.stg import workload_from_stg
from app.sim.importers.wfcommons import workload_from_wfcommons

__all__ = [
    "workload_from_csv",
    "workload_from_records",
    "workload_from_stg",
    "workload_from_wfcommons",
]
