"""live change notifications: each committed change of a run or a study is announced on the
PostgreSQL channel `hms_events` (payload: the id whose stream changed), so the API's Server-Sent
Events wake at once instead of at their next poll (app/db/notify.py)

A trigger, not a call in the workers' write paths: it catches every writer (a worker, the API's
cancel, the recovery sweep, a purge), and NOTIFY inside the writing transaction is delivered only
when that transaction commits (and never if it rolls back), so nothing uncommitted is announced.
Identical notifications of one transaction are folded into one by PostgreSQL.

A run's change announces the run; when its status changes (it starts or ends, or is inserted or
deleted) it announces its study too, whose counts and progress move only then. A study's change
announces the study.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "hms_events"


def upgrade() -> None:
    op.execute(f"""
        CREATE FUNCTION hms_announce_run_change() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            changed runs%ROWTYPE;
            status_changed boolean := TG_OP <> 'UPDATE';
        BEGIN
            IF TG_OP = 'DELETE' THEN
                changed := OLD;
            ELSE
                changed := NEW;
            END IF;
            IF TG_OP = 'UPDATE' THEN
                status_changed := OLD.status IS DISTINCT FROM NEW.status;
            END IF;
            PERFORM pg_notify('{CHANNEL}', changed.id::text);
            IF status_changed AND changed.study_id IS NOT NULL THEN
                PERFORM pg_notify('{CHANNEL}', changed.study_id::text);
            END IF;
            RETURN NULL;
        END
        $$
    """)
    op.execute(f"""
        CREATE FUNCTION hms_announce_study_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                PERFORM pg_notify('{CHANNEL}', OLD.id::text);
            ELSE
                PERFORM pg_notify('{CHANNEL}', NEW.id::text);
            END IF;
            RETURN NULL;
        END
        $$
    """)
    for table, function in (("runs", "run"), ("studies", "study")):
        op.execute(f"""
            CREATE TRIGGER hms_announce_{function}_change
            AFTER INSERT OR UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION hms_announce_{function}_change()
        """)


def downgrade() -> None:
    for table, function in (("runs", "run"), ("studies", "study")):
        op.execute(f"DROP TRIGGER hms_announce_{function}_change ON {table}")
        op.execute(f"DROP FUNCTION hms_announce_{function}_change()")
