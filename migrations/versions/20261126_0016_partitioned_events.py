"""events partitioned by month of the session's start (issue 16)

``events`` becomes ``PARTITION BY RANGE (session_started_at)``: a copy of its session's
``started_at`` on every row, so a session never straddles two partitions and a month can be
dropped as a whole once every session in it is expired (``auditagent/store/month_drop.py``).
Existing rows move by a join to ``sessions``; the months they fall in, and the next
``MONTHS_AHEAD``, are created, plus a default partition for anything outside them.

The append-only guard triggers, the check constraint and the app role's grants are re-created
on the new table; row triggers on a partitioned table are cloned onto every partition.

Two things keep partitions safe that row triggers cannot:

* ``auditagent_ensure_months(table, ahead)`` (``SECURITY DEFINER``, owned by the schema owner)
  creates missing months for the app role, which does not own ``events`` and so could not
  create a partition itself; it touches only tables partitioned on ``session_started_at``.
* ``DROP`` of a partition skips row triggers. Only the owner can detach or drop one (the app
  role holds no privilege on partitions at all), and, when this migration runs as a superuser,
  an event trigger refuses the drop of any ``<table>_pYYYYMM`` / ``<table>_default`` table of
  ``GROWING_TABLES`` (a table joining later re-creates the function with itself added) unless
  the transaction ran ``SET LOCAL auditagent.allow_purge = 'month'`` — which only
  ``auditagent/store/month_drop.py`` does, after the month's deletion records are committed.

Downgrade refuses: folding partitions back into one table is not supported.

Revision ID: 0016
Revises: 0014
Create Date: 2026-11-26 13:40:00.000000
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone

from alembic import op
from sqlalchemy import text

from auditagent.store import partitions

revision: str = "0016"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS_AHEAD = 2

ENSURE_MONTHS = f"""
CREATE OR REPLACE FUNCTION auditagent_ensure_months(tbl text, ahead int) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  m date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
  part text;
  made int := 0;
  stray boolean;
BEGIN
  IF ahead < 0 OR ahead > 24 THEN
    RAISE EXCEPTION 'auditagent: ahead must be 0..24';
  END IF;
  -- Only a table of ours, partitioned by range on session_started_at.
  IF NOT EXISTS (
    SELECT 1 FROM pg_partitioned_table p
    JOIN pg_class c ON c.oid = p.partrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
    WHERE n.nspname = 'public' AND c.relname = tbl AND p.partstrat = 'r'
      AND a.attname = '{partitions.KEY_COLUMN}') THEN
    RAISE EXCEPTION 'auditagent: % is not a table partitioned by month', tbl;
  END IF;
  FOR i IN 0..ahead LOOP
    part := tbl || '_p' || to_char(m, 'YYYYMM');
    IF to_regclass(part) IS NULL THEN
      -- Creating a partition locks the parent: callers bound the wait with a local
      -- lock_timeout (the writer's is short).
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE {partitions.KEY_COLUMN} >= %L '
                     'AND {partitions.KEY_COLUMN} < %L)', tbl || '_default',
                     m::timestamp AT TIME ZONE 'UTC',
                     (m + interval '1 month')::timestamp AT TIME ZONE 'UTC') INTO STRICT stray;
      IF NOT stray THEN
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       part, tbl, m::timestamp AT TIME ZONE 'UTC',
                       (m + interval '1 month')::timestamp AT TIME ZONE 'UTC');
        EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION auditagent_append_only()', part || '_no_truncate', part);
        made := made + 1;
      END IF;
    END IF;
    m := (m + interval '1 month')::date;
  END LOOP;
  RETURN made;
END;
$$;
"""

# Migration 0001's guard, with the table named by its partition root: a row trigger cloned onto
# a partition fires with the partition's name in TG_TABLE_NAME.
APPEND_ONLY_GUARD = """
CREATE OR REPLACE FUNCTION auditagent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE'
     AND coalesce(current_setting('auditagent.allow_purge', true), '') = 'on'
     AND coalesce(pg_partition_root(TG_RELID), TG_RELID)::regclass::text
         IN ('events', 'access_log') THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'auditagent: % on % is not allowed: the table is append-only',
    TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'records are removed only by `auditagent retention run`';
END;
$$;
"""

DROP_GUARD = (
    """
CREATE OR REPLACE FUNCTION auditagent_partition_drop_guard() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  obj record;
BEGIN
  FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects()
             WHERE object_type = 'table' AND schema_name = 'public' LOOP
    IF obj.object_name ~ '^(TABLES)_(p[0-9]{6}|default)$'
       AND coalesce(current_setting('auditagent.allow_purge', true), '') <> 'month' THEN
      RAISE EXCEPTION 'auditagent: DROP of % is not allowed: partitions hold append-only records',
        obj.object_name
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'a month is dropped only by `auditagent retention run`, '
                     'after its deletion records';
    END IF;
  END LOOP;
END;
$$;
"""
).replace("TABLES", "|".join(partitions.GROWING_TABLES))


def _app_role() -> str | None:
    settings = (
        op.get_context().config.attributes.get("settings") if op.get_context().config else None
    )
    role = getattr(settings, "db_app_role", None)
    if role is None:
        role = os.environ.get("AUDITAGENT_DB_APP_ROLE") or None
    return role


def upgrade() -> None:
    bind = op.get_bind()
    orphans = bind.execute(
        text(
            "SELECT count(*) FROM events e "
            "WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = e.session_id)"
        )
    ).scalar_one()
    if orphans:
        raise RuntimeError(
            f"{orphans} event rows belong to no session: they cannot be placed in a month; "
            "restore their sessions rows from a backup, then run `auditagent db upgrade` again"
        )
    op.execute("ALTER TABLE events RENAME TO events_unpartitioned")
    op.execute("ALTER TABLE events_unpartitioned RENAME CONSTRAINT pk_events TO pk_events_old")
    op.execute("DROP TRIGGER IF EXISTS events_append_only ON events_unpartitioned")
    op.execute("DROP TRIGGER IF EXISTS events_no_truncate ON events_unpartitioned")
    op.execute(
        f"""
        CREATE TABLE events (
          session_id uuid NOT NULL,
          seq integer NOT NULL,
          tenant varchar(128) NOT NULL,
          kind varchar(32) NOT NULL,
          at timestamptz NOT NULL,
          key_id varchar(64) NOT NULL,
          nonce bytea NOT NULL,
          ciphertext bytea NOT NULL,
          prev_hash bytea NOT NULL,
          hash bytea NOT NULL,
          ingested_at timestamptz NOT NULL DEFAULT now(),
          {partitions.KEY_COLUMN} timestamptz NOT NULL,
          CONSTRAINT ck_events_seq_nonnegative CHECK (seq >= 0),
          CONSTRAINT pk_events PRIMARY KEY (session_id, seq, {partitions.KEY_COLUMN})
        ) PARTITION BY RANGE ({partitions.KEY_COLUMN})
        """
    )
    for ddl in partitions.create_partitioned_ddl("events"):
        op.execute(ddl)
    # Months of the existing rows and the next few; then the rows, straight into them.
    rows = bind.execute(
        text(
            "SELECT DISTINCT date_trunc('month', s.started_at AT TIME ZONE 'UTC') AS m "
            "FROM sessions s WHERE EXISTS "
            "(SELECT 1 FROM events_unpartitioned e WHERE e.session_id = s.id)"
        )
    ).scalars()
    months = {partitions.Month(m.year, m.month) for m in rows}
    months |= set(partitions.Month.of(datetime.now(timezone.utc)).ahead(MONTHS_AHEAD))
    partitions.ensure_months(bind, "events", months)
    op.execute(
        "INSERT INTO events (session_id, seq, tenant, kind, at, key_id, nonce, ciphertext, "
        f"prev_hash, hash, ingested_at, {partitions.KEY_COLUMN}) "
        "SELECT e.session_id, e.seq, e.tenant, e.kind, e.at, e.key_id, e.nonce, e.ciphertext, "
        "e.prev_hash, e.hash, e.ingested_at, s.started_at "
        "FROM events_unpartitioned e JOIN sessions s ON s.id = e.session_id "
        "ORDER BY e.session_id, e.seq"
    )
    op.execute("DROP TABLE events_unpartitioned")

    op.execute(APPEND_ONLY_GUARD)
    op.execute(
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
        "FOR EACH ROW EXECUTE FUNCTION auditagent_append_only()"
    )
    op.execute(
        "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
        "FOR EACH STATEMENT EXECUTE FUNCTION auditagent_append_only()"
    )
    op.execute(ENSURE_MONTHS)
    op.execute("REVOKE ALL ON FUNCTION auditagent_ensure_months(text, int) FROM PUBLIC")

    role = _app_role()
    if role:
        quoted = bind.dialect.identifier_preparer.quote(role)
        op.execute(f"GRANT SELECT, INSERT ON events TO {quoted}")
        op.execute(f"GRANT EXECUTE ON FUNCTION auditagent_ensure_months(text, int) TO {quoted}")

    superuser = bind.execute(
        text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    ).scalar_one()
    if superuser:
        op.execute(DROP_GUARD)
        op.execute(
            "CREATE EVENT TRIGGER auditagent_partition_drop_guard ON sql_drop "
            "EXECUTE FUNCTION auditagent_partition_drop_guard()"
        )


def downgrade() -> None:
    raise RuntimeError(
        "revision 0016 (partitioned events) cannot be downgraded: restore the database from a "
        "backup taken before `auditagent db upgrade`, or stay on 0016"
    )
