"""call audio and search index partitioned by month of the session's start (issue 16)

``audio_chunks`` and ``search_index`` grow with calls like ``events`` and are partitioned the
way migration 0016 partitions it: ``PARTITION BY RANGE (session_started_at)``, a copy of the
session's ``started_at`` on every row (added here, filled from ``sessions``), in every key; one
partition per UTC month plus a default partition; existing rows move by a join to
``sessions``. Their months are then created ahead by the same SECURITY DEFINER
``auditagent_ensure_months`` (it takes any table partitioned on that column) and dropped with
the month's ``events`` by ``auditagent/store/month_drop.py``.

The audio guard triggers, the indexes (the search index's GIN index among them), the check
constraints, the storage setting of the audio bytes and the app role's grants are re-created
on the new tables; 0016's DROP guard is re-created with the two tables added. ``events``'
append-only trigger gets an argument that spares its guard a catalog lookup per deleted row
(see ``APPEND_ONLY_GUARD``).

``search_index_sessions`` (one marker row per session, not per call minute) stays as it is.
Search index rows of no session (none is written: the writer takes the start from the
session) could not be placed in a month; being derived data that ``auditagent search
reindex`` rebuilds, they are left out. Call audio of no session is refused, like 0016's events.

Downgrade folds each table back into one unpartitioned table (rows kept, the column dropped).

Revision ID: 0018
Revises: 0016
Create Date: 2026-11-26 15:45:00.000000
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone

from alembic import op
from sqlalchemy import text

from auditagent.store import partitions

revision: str = "0018"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS_AHEAD = 2
KEY = partitions.KEY_COLUMN

# Frozen here (not read from GROWING_TABLES): what this revision and the one before guard.
GUARDED_AFTER = ("events", "audio_chunks", "search_index")
GUARDED_BEFORE = ("events",)

DROP_GUARD = """
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

# The append-only guard, told by a trigger argument that it guards rows the purge path may
# delete, instead of looking up each row's partition root: it runs once per deleted row, and
# 0016's ``pg_partition_root(TG_RELID)::regclass::text`` (a catalog lookup per row) cost
# ~8 µs a row — most of why a per-session purge of 1M events got slower with partitions
# (bench/README.md). ``access_log`` (unpartitioned) is still named.
APPEND_ONLY_GUARD = """
CREATE OR REPLACE FUNCTION auditagent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE'
     AND coalesce(current_setting('auditagent.allow_purge', true), '') = 'on'
     AND (TG_ARGV[0] = 'purgeable' OR TG_TABLE_NAME = 'access_log') THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'auditagent: % on % is not allowed: the table is append-only',
    TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'records are removed only by `auditagent retention run`';
END;
$$;
"""

# Migration 0016's, for the downgrade.
APPEND_ONLY_GUARD_0016 = """
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

AUDIO_COLUMNS = (
    "session_id, chunk_index, tenant, key_id, offset_samples, duration_samples, size, nonce, "
    "ciphertext, ingested_at"
)
SEARCH_COLUMNS = "session_id, key_id, role, first_token, tenant, tokens"

AUDIO_TABLE = """
CREATE TABLE audio_chunks (
  session_id uuid NOT NULL,
  chunk_index integer NOT NULL,
  tenant varchar(128) NOT NULL,
  key_id varchar(64) NOT NULL,
  offset_samples bigint NOT NULL,
  duration_samples bigint NOT NULL,
  size integer NOT NULL,
  nonce bytea NOT NULL,
  ciphertext bytea NOT NULL,
  ingested_at timestamptz NOT NULL DEFAULT now(),
  {key}
  CONSTRAINT ck_audio_chunks_placement_valid CHECK (
    chunk_index >= 0 AND offset_samples >= 0 AND duration_samples >= 0 AND size >= 0),
  CONSTRAINT pk_audio_chunks PRIMARY KEY (session_id, chunk_index{pk})
){by}
"""

SEARCH_TABLE = """
CREATE TABLE search_index (
  session_id uuid NOT NULL,
  key_id varchar(64) NOT NULL,
  role smallint NOT NULL,
  first_token smallint NOT NULL,
  tenant varchar(128) NOT NULL,
  tokens integer[] NOT NULL,
  {key}
  CONSTRAINT ck_search_index_role_valid CHECK (role IN (1, 2, 3)),
  CONSTRAINT ck_search_index_token_nonnegative CHECK (first_token >= 0),
  CONSTRAINT pk_search_index PRIMARY KEY (session_id, key_id, role, first_token{pk})
){by}
"""

PARTITIONED = {
    "key": f"{KEY} timestamptz NOT NULL,",
    "pk": f", {KEY}",
    "by": f" PARTITION BY RANGE ({KEY})",
}
PLAIN = {"key": "", "pk": "", "by": ""}


def _app_role() -> str | None:
    config = op.get_context().config
    settings = config.attributes.get("settings") if config else None
    role = getattr(settings, "db_app_role", None)
    if role is None:
        role = os.environ.get("AUDITAGENT_DB_APP_ROLE") or None
    return role


def _superuser() -> bool:
    return bool(
        op.get_bind()
        .execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
        .scalar_one()
    )


def _guard(tables: Sequence[str]) -> None:
    if _superuser():
        op.execute(DROP_GUARD.replace("TABLES", "|".join(tables)))


def _audio_guards() -> None:
    # Migration 0015's triggers; row triggers on a partitioned table are cloned onto every
    # partition, the TRUNCATE one is per partition (store/partitions.py adds it to each).
    op.execute(
        "CREATE TRIGGER audio_chunks_append_only BEFORE UPDATE OR DELETE ON audio_chunks "
        "FOR EACH ROW EXECUTE FUNCTION auditagent_audio_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audio_chunks_no_truncate BEFORE TRUNCATE ON audio_chunks "
        "FOR EACH STATEMENT EXECUTE FUNCTION auditagent_append_only()"
    )
    # Chunks are stored already compressed (Opus): spare Postgres the futile attempt. Set on
    # the parent, it is copied onto the partitions it has and every one created later.
    op.execute("ALTER TABLE audio_chunks ALTER COLUMN ciphertext SET STORAGE EXTERNAL")


def _search_indexes() -> None:
    op.execute("CREATE INDEX ix_search_index_tokens ON search_index USING gin (tokens)")
    op.execute("CREATE INDEX ix_search_index_tenant_key ON search_index (tenant, key_id)")


def _grant(table: str) -> None:
    role = _app_role()
    if role:
        quoted = op.get_bind().dialect.identifier_preparer.quote(role)
        op.execute(f"GRANT SELECT, INSERT ON {table} TO {quoted}")


def _set_aside(table: str, indexes: Sequence[str], triggers: Sequence[str]) -> str:
    """Rename ``table`` and its indexes out of the way of the new table; returns its new name."""
    old = f"{table}_old"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    for ix in indexes:
        op.execute(f"ALTER INDEX {ix} RENAME TO {ix}_old")
    for trg in triggers:
        op.execute(f"DROP TRIGGER IF EXISTS {trg} ON {old}")
    return old


def _months(old: str) -> set[partitions.Month]:
    rows = (
        op.get_bind()
        .execute(
            text(
                "SELECT DISTINCT date_trunc('month', s.started_at AT TIME ZONE 'UTC') AS m "
                f"FROM sessions s WHERE EXISTS (SELECT 1 FROM {old} o WHERE o.session_id = s.id)"
            )
        )
        .scalars()
    )
    months = {partitions.Month(m.year, m.month) for m in rows}
    return months | set(partitions.Month.of(datetime.now(timezone.utc)).ahead(MONTHS_AHEAD))


def upgrade() -> None:
    bind = op.get_bind()
    orphans = bind.execute(
        text(
            "SELECT count(*) FROM audio_chunks a "
            "WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = a.session_id)"
        )
    ).scalar_one()
    if orphans:
        raise RuntimeError(
            f"{orphans} audio chunks belong to no session: they cannot be placed in a month; "
            "restore their sessions rows from a backup, then run `auditagent db upgrade` again"
        )
    old = _set_aside(
        "audio_chunks",
        ["pk_audio_chunks"],
        ["audio_chunks_append_only", "audio_chunks_no_truncate"],
    )
    op.execute(AUDIO_TABLE.format(**PARTITIONED))
    for ddl in partitions.create_partitioned_ddl("audio_chunks"):
        op.execute(ddl)
    _audio_guards()
    partitions.ensure_months(bind, "audio_chunks", _months(old))
    op.execute(
        f"INSERT INTO audio_chunks ({AUDIO_COLUMNS}, {KEY}) "
        f"SELECT {', '.join('o.' + c for c in AUDIO_COLUMNS.split(', '))}, s.started_at "
        f"FROM {old} o JOIN sessions s ON s.id = o.session_id ORDER BY o.session_id, o.chunk_index"
    )
    op.execute(f"DROP TABLE {old}")
    _grant("audio_chunks")

    old = _set_aside(
        "search_index",
        ["pk_search_index", "ix_search_index_tokens", "ix_search_index_tenant_key"],
        [],
    )
    op.execute(SEARCH_TABLE.format(**PARTITIONED))
    for ddl in partitions.create_partitioned_ddl("search_index"):
        op.execute(ddl)
    partitions.ensure_months(bind, "search_index", _months(old))
    op.execute(
        f"INSERT INTO search_index ({SEARCH_COLUMNS}, {KEY}) "
        f"SELECT {', '.join('o.' + c for c in SEARCH_COLUMNS.split(', '))}, s.started_at "
        f"FROM {old} o JOIN sessions s ON s.id = o.session_id"
    )
    op.execute(f"DROP TABLE {old}")
    # Built once over the moved rows rather than kept up row by row while they move.
    _search_indexes()
    _grant("search_index")

    _guard(GUARDED_AFTER)
    _events_guard(APPEND_ONLY_GUARD, "'purgeable'")


def _events_guard(function: str, argument: str) -> None:
    # Re-created on the parent, the row trigger is cloned again onto every partition.
    op.execute(function)
    op.execute("DROP TRIGGER events_append_only ON events")
    op.execute(
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
        f"FOR EACH ROW EXECUTE FUNCTION auditagent_append_only({argument})"
    )


def downgrade() -> None:
    _events_guard(APPEND_ONLY_GUARD_0016, "")
    # First: the partitions of these two tables are no longer guarded, so dropping the
    # partitioned tables (after their rows are copied back) drops them too.
    _guard(GUARDED_BEFORE)

    old = _set_aside(
        "audio_chunks",
        ["pk_audio_chunks"],
        ["audio_chunks_append_only", "audio_chunks_no_truncate"],
    )
    op.execute(AUDIO_TABLE.format(**PLAIN))
    _audio_guards()
    op.execute(
        f"INSERT INTO audio_chunks ({AUDIO_COLUMNS}) SELECT {AUDIO_COLUMNS} FROM {old} "
        "ORDER BY session_id, chunk_index"
    )
    op.execute(f"DROP TABLE {old}")
    _grant("audio_chunks")
    role = _app_role()
    if role:
        quoted = op.get_bind().dialect.identifier_preparer.quote(role)
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audio_chunks FROM {quoted}")

    old = _set_aside(
        "search_index",
        ["pk_search_index", "ix_search_index_tokens", "ix_search_index_tenant_key"],
        [],
    )
    op.execute(SEARCH_TABLE.format(**PLAIN))
    op.execute(f"INSERT INTO search_index ({SEARCH_COLUMNS}) SELECT {SEARCH_COLUMNS} FROM {old}")
    op.execute(f"DROP TABLE {old}")
    _search_indexes()
    _grant("search_index")
