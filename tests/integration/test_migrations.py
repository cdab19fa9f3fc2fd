"""Migrations are code: they build the schema the models describe, and they reverse cleanly."""

import uuid

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from app.db.migrate import downgrade, upgrade
from app.db.models import Base


@pytest.fixture
def empty_database(servers):
    url = make_url(servers.database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS hms_migrations"))
        connection.execute(text("CREATE DATABASE hms_migrations"))
    yield url.set(database="hms_migrations").render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE hms_migrations WITH (FORCE)"))
    admin.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_on_an_empty_database(empty_database):
    upgrade(empty_database)
    assert {"runs", "run_results"} <= tables(empty_database)
    downgrade(empty_database, "base")
    assert tables(empty_database) == set()
    upgrade(empty_database)
    assert {"runs", "run_results"} <= tables(empty_database)


def test_the_migrated_schema_matches_the_models(empty_database):
    upgrade(empty_database)
    engine = create_engine(empty_database)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def _execute(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def _rows(url: str, query: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


RUN_ID = "00000000-0000-0000-0000-000000000001"
OLD_DATA = (
    f"INSERT INTO runs (id, status, spec, priority, request_digest, progress, attempts) "
    f"VALUES ('{RUN_ID}', 'succeeded', '{{}}', 5, 'digest', 1, 1)",
    f"INSERT INTO run_results (run_id, policy, makespan, mean_flow_time, energy, cost, "
    f"mean_utilization, utilization) VALUES ('{RUN_ID}', 'heft', 2, 1, 3, 4, 0.5, '{{}}')",
    "INSERT INTO training_samples (features, device_kind, seconds) "
    "VALUES ('{1.0, 2.0}', 0, 0.5), ('{1.0, 2.0}', 1, 0.1)",
    *(
        "INSERT INTO model_versions (version, status, is_active, reason, algorithm, params, "
        "window_first_sample, window_last_sample, sample_count, holdout_count, metrics, "
        "artifact_format, artifact_digest, artifact, trained_at, duration_s) "
        f"VALUES ({version}, '{status}', {active}, 'beat the active model', 'hgb', '{{}}', 1, 2, "
        "2, 1, '{}', 'skops', 'digest', '\\x00', now(), 1.0)"
        for version, status, active in ((1, "promoted", "false"), (2, "promoted", "true"))
    ),
)


def test_0005_ranks_new_results_and_retires_the_nominal_model_samples(empty_database):
    upgrade(empty_database, "0004")
    _execute(empty_database, *OLD_DATA)
    upgrade(empty_database, "0005")
    assert _rows(empty_database, "SELECT count(*) FROM training_samples") == [(0,)]
    reason = "beat the active model; retired by migration 0005: trained on nominal-model times"
    versions = _rows(empty_database, "SELECT status, is_active, reason FROM model_versions")
    assert len(versions) == 2
    assert all(
        status == "rejected" and not active and current.startswith(reason)
        for status, active, current in versions
    )
    # Rows from before are kept, unranked.
    assert _rows(empty_database, "SELECT rank_by FROM runs") == [(None,)]
    assert _rows(
        empty_database,
        "SELECT policy, rank, mean_slowdown, lower_bound, gap_to_bound FROM run_results",
    ) == [("heft", None, None, None, None)]
    downgrade(empty_database, "0004")
    assert "rank_by" not in _columns(empty_database, "runs")
    assert not {"rank", "mean_slowdown", "lower_bound", "gap_to_bound"} & _columns(
        empty_database, "run_results"
    )
    assert _rows(empty_database, "SELECT count(*) FROM run_results") == [(1,)]


def test_0008_adds_kernel_profiles_unique_by_name_per_tenant_and_drops_them(empty_database):
    upgrade(empty_database, "0007")
    assert "kernel_profiles" not in tables(empty_database)
    upgrade(empty_database, "0008")
    insert = (
        "INSERT INTO kernel_profiles (tenant, name, summary, document) "
        "VALUES ('{tenant}', 'lab', '{{}}', '{{}}')"
    )
    _execute(empty_database, insert.format(tenant="team-a"), insert.format(tenant="team-b"))
    with pytest.raises(IntegrityError):
        _execute(empty_database, insert.format(tenant="team-a"))
    assert _rows(empty_database, "SELECT tenant FROM kernel_profiles ORDER BY tenant") == [
        ("team-a",),
        ("team-b",),
    ]
    downgrade(empty_database, "0007")
    assert "kernel_profiles" not in tables(empty_database)


def test_0009_adds_kernel_observations_and_model_fits_one_per_window_and_drops_them(
    empty_database,
):
    upgrade(empty_database, "0008")
    _execute(empty_database, *OLD_DATA[:2])
    upgrade(empty_database, "0009")
    assert _rows(empty_database, "SELECT perf_model_version FROM runs") == [(None,)]
    _execute(
        empty_database,
        "INSERT INTO kernel_observations (tenant, profile, contention, run_id, kernel, "
        f"tile_size, device_kind, seconds) VALUES ('team-a', 'lab', 'alone', '{RUN_ID}', "
        "'gemm', 256, 'gpu', 0.001)",
    )
    fit = (
        "INSERT INTO kernel_model_fits (tenant, profile, contention, model, version, "
        "observation_count, newest_observation_id, fitted_at, fit_s, state) VALUES "
        "('team-a', 'lab', 'alone', 'history', {version}, 1, {newest}, now(), 0.01, '{{}}')"
    )
    _execute(empty_database, fit.format(version=1, newest=1), fit.format(version=2, newest=2))
    with pytest.raises(IntegrityError):  # a second fit on the same observations
        _execute(empty_database, fit.format(version=3, newest=1))
    with pytest.raises(IntegrityError):  # a version taken
        _execute(empty_database, fit.format(version=2, newest=3))
    _execute(empty_database, "DELETE FROM runs")  # the schema keeps them (delete_runs does not)
    assert _rows(empty_database, "SELECT run_id, kernel FROM kernel_observations") == [
        (None, "gemm")
    ]
    downgrade(empty_database, "0008")
    assert not {"kernel_observations", "kernel_model_fits"} & tables(empty_database)
    assert "perf_model_version" not in _columns(empty_database, "runs")


def test_0013_adds_a_progress_phase_and_a_runs_size_empty_for_old_rows_and_drops_them(
    empty_database,
):
    upgrade(empty_database, "0012")
    _execute(empty_database, *OLD_DATA[:2])
    upgrade(empty_database, "0013")
    assert _rows(empty_database, "SELECT phase, num_tasks FROM runs") == [(None, None)]
    assert "phase" in _columns(empty_database, "training_jobs")
    downgrade(empty_database, "0012")
    assert not {"phase", "num_tasks"} & _columns(empty_database, "runs")
    assert "phase" not in _columns(empty_database, "training_jobs")


SAMPLE_ROWS = (
    "SELECT id, run_id, features, device_kind, seconds, oracle_share FROM training_samples"
)
OBSERVATION_ROWS = (
    "SELECT id, tenant, profile, contention, run_id, kernel, tile_size, device_kind, seconds "
    "FROM kernel_observations"
)


def test_0016_packs_samples_and_observations_one_row_a_run_keeping_every_id_and_back(
    empty_database,
):
    upgrade(empty_database, "0015")
    _execute(
        empty_database,
        *OLD_DATA[:2],
        # Two runs' samples (one with its run deleted since), their ids interleaved; a gap.
        "INSERT INTO training_samples (id, run_id, features, device_kind, seconds, oracle_share) "
        f"VALUES (3, '{RUN_ID}', '{{1.5, -2.0}}', 0, 0.25, NULL), "
        "(4, NULL, '{3.0, 4.0}', 1, 1e-300, 0.5), "
        f"(5, '{RUN_ID}', '{{0.1, 0.2}}', 1, 0.1, 0.75)",
        "SELECT setval(pg_get_serial_sequence('training_samples', 'id'), 9)",
        "INSERT INTO kernel_observations (id, tenant, profile, contention, run_id, kernel, "
        f"tile_size, device_kind, seconds) VALUES (7, 'team-a', 'lab', 'alone', '{RUN_ID}', "
        f"'gemm', 256, 'gpu', 0.001), (8, 'team-a', 'lab', 'alone', '{RUN_ID}', 'potrf', 512, "
        "'cpu', 0.02), (9, 'team-b', 'lab', 'alone', NULL, 'gemm', 256, 'cpu', 0.003)",
    )
    samples = sorted(_rows(empty_database, SAMPLE_ROWS))
    observations = sorted(_rows(empty_database, OBSERVATION_ROWS))

    upgrade(empty_database, "0016")
    assert not {"training_samples", "kernel_observations"} & tables(empty_database)
    assert _rows(
        empty_database,
        "SELECT run_id, count, first_id, last_id FROM training_sample_sets ORDER BY id",
    ) == [(uuid.UUID(RUN_ID), 2, 3, 5), (None, 1, 4, 4)]
    assert _rows(
        empty_database,
        "SELECT tenant, count, first_id, last_id, kernels, device_kinds, pairs "
        "FROM kernel_observation_sets ORDER BY id",
    ) == [
        ("team-a", 2, 7, 8, ["gemm", "potrf"], ["cpu", "gpu"], ["gemm gpu", "potrf cpu"]),
        ("team-b", 1, 9, 9, ["gemm"], ["cpu"], ["gemm cpu"]),
    ]
    packed_columns = _rows(
        empty_database,
        "SELECT attrelid::regclass::text, attstorage FROM pg_attribute WHERE attrelid IN "
        "('training_sample_sets'::regclass, 'kernel_observation_sets'::regclass) "
        "AND atttypid = 'bytea'::regtype",
    )
    assert len(packed_columns) == 10 and {storage for _, storage in packed_columns} == {"e"}
    # New items take ids after every old one, deleted ones included (the old sequence was at 9).
    assert _rows(empty_database, "SELECT nextval('training_sample_ids')") == [(10,)]
    assert _rows(empty_database, "SELECT nextval('kernel_observation_ids')") == [(10,)]

    downgrade(empty_database, "0015")
    assert sorted(_rows(empty_database, SAMPLE_ROWS)) == samples
    assert sorted(_rows(empty_database, OBSERVATION_ROWS)) == observations
    assert _rows(
        empty_database, "SELECT nextval(pg_get_serial_sequence('training_samples', 'id'))"
    ) == [(11,)]
    assert not {"training_sample_sets", "kernel_observation_sets"} & tables(empty_database)


def test_0018_lets_a_set_store_no_ids_and_downgrading_packs_them_from_its_block(empty_database):
    upgrade(empty_database, "0018")
    _execute(
        empty_database,
        # A set written with a block of ids (none stored), one written before (ids packed).
        "INSERT INTO training_sample_sets (id, count, first_id, last_id, ids, features, "
        "device_kind, seconds, oracle_share) VALUES (1, 3, 11, 13, NULL, '\\x', '\\x', '\\x', "
        "'\\x'), (2, 2, 4, 6, int8send(4::int8) || int8send(6::int8), '\\x', '\\x', '\\x', '\\x')",
        "INSERT INTO kernel_observation_sets (id, tenant, profile, contention, count, first_id, "
        "last_id, ids, kernels, device_kinds, kernel, device_kind, pairs, tile_size, seconds) "
        "VALUES (1, 't', 'p', 'alone', 2, 7, 8, NULL, '{}', '{}', '\\x', '\\x', '{}', '\\x', "
        "'\\x')",
    )
    downgrade(empty_database, "0017")
    packed_ids = "SELECT encode(ids, 'hex') FROM {} ORDER BY id"
    assert _rows(empty_database, packed_ids.format("training_sample_sets")) == [
        (_big_endian(11, 12, 13),),
        (_big_endian(4, 6),),
    ]
    assert _rows(empty_database, packed_ids.format("kernel_observation_sets")) == [
        (_big_endian(7, 8),)
    ]
    with pytest.raises(IntegrityError):  # before 0018, every set stores its ids
        _execute(empty_database, "UPDATE training_sample_sets SET ids = NULL WHERE id = 1")
    upgrade(empty_database)


def _big_endian(*ids: int) -> str:
    """Ids packed as app/db/packed.py packs them (int8send), in hex."""
    return "".join(f"{value:016x}" for value in ids)


def test_0019_stores_features_per_task_and_device_model_and_downgrading_spells_them_out(
    empty_database,
):
    upgrade(empty_database, "0019")
    tasks = np.arange(15, dtype="<f8").reshape(3, 5)  # 3 tasks
    devices = -np.arange(1, 11, dtype="<f8").reshape(2, 5)  # 2 device models
    engine = create_engine(empty_database)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO training_sample_sets (id, count, first_id, last_id, "
                    "task_features, device_features, device_kind, seconds, oracle_share) "
                    "VALUES (1, 6, 1, 6, :tasks, :devices, '\\x', '\\x', '\\x')"
                ),
                {"tasks": tasks.tobytes(), "devices": devices.tobytes()},
            )
    finally:
        engine.dispose()
    downgrade(empty_database, "0018")
    ((features,),) = _rows(empty_database, "SELECT features FROM training_sample_sets")
    spelled = np.frombuffer(features, "<f8").reshape(6, 10)
    for k in range(6):  # device model first: (0, t0), (0, t1), (0, t2), (1, t0)...
        assert spelled[k].tolist() == [*tasks[k % 3], *devices[k // 3]]
    assert "task_features" not in _columns(empty_database, "training_sample_sets")
    upgrade(empty_database)
