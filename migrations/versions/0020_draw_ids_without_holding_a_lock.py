"""draw a block of ids in the transaction that inserts its set: `hms_draw_ids(sequence, count)`
takes the block under a session-level advisory lock that it releases before it returns, so a
run's finish draws its samples' and observations' ids itself instead of in a transaction of its
own before it, and holds no lock through its commit (app/db/packed.py)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07

The lock's key is the one the transaction-scoped lock of 0018's drawers took (advisory locks of
both kinds share their keys), so drawers of either kind still take turns while both run.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The inner block unlocks when the draw fails (or is cancelled) after the lock was taken: a
    # session-level lock is not released by the rollback that follows, and would stay with the
    # pooled connection.
    op.execute(
        """
        CREATE FUNCTION hms_draw_ids(sequence text, count bigint) RETURNS bigint
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            key integer := hashtext('packed:' || sequence);
            last_id bigint;
        BEGIN
            PERFORM pg_advisory_lock(key);
            BEGIN
                last_id := setval(sequence::regclass, nextval(sequence::regclass) + count - 1);
            EXCEPTION WHEN query_canceled OR others THEN
                PERFORM pg_advisory_unlock(key);
                RAISE;
            END;
            PERFORM pg_advisory_unlock(key);
            RETURN last_id - count + 1;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION hms_draw_ids(text, bigint)")
