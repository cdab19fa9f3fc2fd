"""A task that raises its pool process's peak memory says so in the worker's log, and
bench/study_scale.py finds that line in Celery's worker log format."""

from __future__ import annotations

import importlib
import logging

from celery.app.defaults import DEFAULTS

from workers import signals


class Task:
    name = "hms.run_simulation"


def test_a_task_that_raised_the_peak_is_logged_and_one_that_barely_did_is_not(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="workers.signals")
    monkeypatch.setattr(signals, "peak_resident_mb", lambda: 300.0)

    monkeypatch.setattr(signals, "_peak_before_task_mb", 300.0)
    signals._log_peak_memory_rise(Task())
    monkeypatch.setattr(signals, "_peak_before_task_mb", 299.5)  # a rise of 0.5 MB: noise
    signals._log_peak_memory_rise(Task())
    assert not caplog.records

    monkeypatch.setattr(signals, "_peak_before_task_mb", 250.0)
    signals._log_peak_memory_rise(Task())
    [record] = caplog.records
    assert record.getMessage() == (
        "hms.run_simulation raised this process's peak memory from 250.0 to 300.0 MiB"
    )


def test_the_bench_reads_the_line_in_celerys_worker_log_format(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend("bench")
    study_scale = importlib.import_module("study_scale")
    formatter = logging.Formatter(DEFAULTS["worker_log_format"])

    def line(process: str, task: str, before: float, after: float) -> str:
        message = "%s raised this process's peak memory from %.1f to %.1f MiB"
        record = logging.LogRecord(
            "workers.signals", logging.INFO, __file__, 1, message, (task, before, after), None
        )
        record.processName = process
        return formatter.format(record)

    log = tmp_path / "worker.log"
    log.write_text(
        "\n".join(
            [
                line("ForkPoolWorker-1", "hms.run_simulation", 200, 230),
                "[2026-12-06 16:00:00,000: INFO/MainProcess] Task hms.run_simulation succeeded",
                line("ForkPoolWorker-2", "hms.fan_out_study", 210, 340),
                line("ForkPoolWorker-1", "hms.aggregate_study", 230, 250.5),
            ]
        )
    )
    assert study_scale.tasks_that_set_peaks(log) == {
        "ForkPoolWorker-1": [
            ("hms.run_simulation", 200.0, 230.0),
            ("hms.aggregate_study", 230.0, 250.5),
        ],
        "ForkPoolWorker-2": [("hms.fan_out_study", 210.0, 340.0)],
    }
