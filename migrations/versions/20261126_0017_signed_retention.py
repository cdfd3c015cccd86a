"""signed retention: versioned calendar policies, a signed change log for policies and holds,
deletion records with their basis and signature, guards on the tables that decide expiry

Revision ID: 0017
Revises: 0002
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns the recorder writes on `sessions` (counts, heads, tools, close). Everything else
# — tenant, start, labels (they pick the policy), the participant index — is written once at
# INSERT; ended_at and status are guarded by the trigger below.
RECORDER_SESSION_COLUMNS = (
    "head_hash",
    "event_count",
    "tool_names",
    "ended_at",
    "close_reason",
    "status",
    "architecture",
    "agent_name",
    "models",
    "updated_at",
)

# Whoever can run SQL could still shorten a retention by rewriting what decides it. These
# guards hold for every role, owner included; only a superuser who disables a trigger gets
# past them, and then the signed deletion records, the signed change log and the checkpoints
# outside the database are what show it (`auditagent verify --all --checkpoints DIR`).
SESSIONS_GUARD = """
CREATE OR REPLACE FUNCTION auditagent_sessions_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id <> OLD.id OR NEW.tenant <> OLD.tenant OR NEW.started_at <> OLD.started_at
     OR NEW.labels IS DISTINCT FROM OLD.labels THEN
    RAISE EXCEPTION 'auditagent: a session''s id, tenant, start and labels never change'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF OLD.ended_at IS NOT NULL AND NEW.ended_at IS DISTINCT FROM OLD.ended_at THEN
    RAISE EXCEPTION 'auditagent: sessions.ended_at is written once'
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'the end time decides when a session expires';
  END IF;
  IF NEW.status <> OLD.status AND NOT (
       (OLD.status = 'open' AND NEW.status = 'closed')
    OR (OLD.status IN ('open', 'closed') AND NEW.status = 'shredded'
        AND EXISTS (SELECT 1 FROM deletion_records d WHERE d.session_id = NEW.id))
    OR (OLD.status = 'shredded' AND NEW.status = 'purged')) THEN
    RAISE EXCEPTION 'auditagent: session status % -> % is not allowed', OLD.status, NEW.status
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'sessions are shredded only by `auditagent retention run` or erasure, '
                   'with a deletion record';
  END IF;
  IF NEW.participant_index IS DISTINCT FROM OLD.participant_index
     AND NOT (NEW.status = 'purged' AND NEW.participant_index IS NULL) THEN
    RAISE EXCEPTION 'auditagent: the participant index changes only when a session is purged'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;
"""

DATA_KEYS_GUARD = """
CREATE OR REPLACE FUNCTION auditagent_data_keys_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.session_id <> OLD.session_id OR NEW.key_id <> OLD.key_id
     OR NEW.tenant <> OLD.tenant THEN
    RAISE EXCEPTION 'auditagent: a data key''s session, id and tenant never change'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF OLD.wrapped IS NULL OR OLD.shredded_at IS NOT NULL THEN
    IF NEW.wrapped IS NOT NULL OR NEW.shredded_at IS DISTINCT FROM OLD.shredded_at THEN
      RAISE EXCEPTION 'auditagent: a destroyed data key stays destroyed'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  ELSIF NEW.wrapped IS NULL OR NEW.shredded_at IS NOT NULL THEN
    IF NOT EXISTS (SELECT 1 FROM deletion_records d WHERE d.session_id = NEW.session_id) THEN
      RAISE EXCEPTION 'auditagent: a data key is destroyed only with a deletion record'
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'use `auditagent erasure` or `auditagent retention run`';
    END IF;
  END IF;
  RETURN NEW;
END;
$$;
"""

LEGAL_HOLDS_GUARD = """
CREATE OR REPLACE FUNCTION auditagent_legal_holds_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.released_at IS NULL AND NEW.released_at IS NOT NULL
     AND NEW.id = OLD.id AND NEW.scope = OLD.scope AND NEW.tenant = OLD.tenant
     AND NEW.session_id IS NOT DISTINCT FROM OLD.session_id
     AND NEW.participant_index IS NOT DISTINCT FROM OLD.participant_index
     AND NEW.reason = OLD.reason AND NEW.created_by = OLD.created_by
     AND NEW.created_at = OLD.created_at THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'auditagent: % on legal_holds is not allowed: a hold is only ever released',
    TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'release it with `auditagent holds release`';
END;
$$;
"""

APPEND_ONLY_NEW = ("retention_changes", "retention_policies")


def _app_role() -> str | None:
    settings = (
        op.get_context().config.attributes.get("settings") if op.get_context().config else None
    )
    role = getattr(settings, "db_app_role", None)
    if role is None:
        role = os.environ.get("AUDITAGENT_DB_APP_ROLE") or None
    return role


def upgrade() -> None:
    op.create_table(
        "retention_changes",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.UUID(), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_retention_changes")),
    )
    op.create_index("ix_retention_changes_subject", "retention_changes", ["subject"], unique=False)

    op.add_column(
        "retention_policies",
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
    )
    op.add_column(
        "retention_policies",
        sa.Column("keep_months", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "retention_policies",
        sa.Column("keep_years", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "retention_policies",
        sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.drop_constraint(
        op.f("ck_retention_policies_keep_days_positive"), "retention_policies", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_retention_policies_keep_valid"),
        "retention_policies",
        "keep_days >= 0 AND keep_months >= 0 AND keep_years >= 0 "
        "AND (deleted OR keep_days + keep_months + keep_years > 0)",
    )
    op.drop_index("uq_retention_policies_tenant_agent", table_name="retention_policies")
    op.drop_index(
        "uq_retention_policies_tenant_default",
        table_name="retention_policies",
        postgresql_where=sa.text("agent IS NULL"),
    )
    op.create_index(
        "uq_retention_policies_tenant_agent_version",
        "retention_policies",
        ["tenant", "agent", "version"],
        unique=True,
    )
    op.create_index(
        "uq_retention_policies_tenant_default_version",
        "retention_policies",
        ["tenant", "version"],
        unique=True,
        postgresql_where=sa.text("agent IS NULL"),
    )

    op.add_column(
        "deletion_records",
        sa.Column("basis", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("deletion_records", sa.Column("signature", sa.LargeBinary(), nullable=True))
    op.add_column(
        "retention_runs",
        sa.Column("sessions_matched", sa.Integer(), server_default="0", nullable=False),
    )

    op.execute(SESSIONS_GUARD)
    op.execute(DATA_KEYS_GUARD)
    op.execute(LEGAL_HOLDS_GUARD)
    op.execute(
        "CREATE TRIGGER sessions_guard BEFORE UPDATE ON sessions "
        "FOR EACH ROW EXECUTE FUNCTION auditagent_sessions_guard()"
    )
    op.execute(
        "CREATE TRIGGER data_keys_guard BEFORE UPDATE ON data_keys "
        "FOR EACH ROW EXECUTE FUNCTION auditagent_data_keys_guard()"
    )
    op.execute(
        "CREATE TRIGGER legal_holds_guard BEFORE UPDATE OR DELETE ON legal_holds "
        "FOR EACH ROW EXECUTE FUNCTION auditagent_legal_holds_guard()"
    )
    op.execute(
        "CREATE TRIGGER legal_holds_no_truncate BEFORE TRUNCATE ON legal_holds "
        "FOR EACH STATEMENT EXECUTE FUNCTION auditagent_append_only()"
    )
    for table in APPEND_ONLY_NEW:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION auditagent_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION auditagent_append_only()"
        )

    role = _app_role()
    if role:
        quoted = op.get_bind().dialect.identifier_preparer.quote(role)
        # The recorder and the read API: they never decide what expires, hold or delete.
        # Retention, holds and erasure run as the owner (AUDITAGENT_RETENTION_DATABASE_URL).
        op.execute(
            "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON legal_holds, retention_policies, "
            f"retention_runs, deletion_records FROM {quoted}"
        )
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON sessions, data_keys FROM {quoted}")
        op.execute(f"GRANT UPDATE ({', '.join(RECORDER_SESSION_COLUMNS)}) ON sessions TO {quoted}")
        op.execute(f"GRANT SELECT ON retention_changes TO {quoted}")


def downgrade() -> None:
    role = _app_role()
    if role:
        quoted = op.get_bind().dialect.identifier_preparer.quote(role)
        op.execute(
            f"REVOKE UPDATE ({', '.join(RECORDER_SESSION_COLUMNS)}) ON sessions FROM {quoted}"
        )
        op.execute(f"GRANT INSERT ON legal_holds, retention_policies, retention_runs TO {quoted}")
        op.execute(f"GRANT INSERT ON deletion_records TO {quoted}")
        op.execute(
            "GRANT UPDATE, DELETE ON sessions, data_keys, legal_holds, retention_policies, "
            f"retention_runs TO {quoted}"
        )
    for table in APPEND_ONLY_NEW:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    op.execute("DROP TRIGGER IF EXISTS legal_holds_no_truncate ON legal_holds")
    op.execute("DROP TRIGGER IF EXISTS legal_holds_guard ON legal_holds")
    op.execute("DROP TRIGGER IF EXISTS data_keys_guard ON data_keys")
    op.execute("DROP TRIGGER IF EXISTS sessions_guard ON sessions")
    op.execute("DROP FUNCTION IF EXISTS auditagent_legal_holds_guard()")
    op.execute("DROP FUNCTION IF EXISTS auditagent_data_keys_guard()")
    op.execute("DROP FUNCTION IF EXISTS auditagent_sessions_guard()")

    op.drop_column("retention_runs", "sessions_matched")
    op.drop_column("deletion_records", "signature")
    op.drop_column("deletion_records", "basis")
    # Only the newest live version of each policy survives the way back.
    op.execute(
        "DELETE FROM retention_policies p USING retention_policies q "
        "WHERE q.tenant = p.tenant AND q.agent IS NOT DISTINCT FROM p.agent "
        "AND q.version > p.version"
    )
    op.execute("DELETE FROM retention_policies WHERE deleted")
    op.drop_index(
        "uq_retention_policies_tenant_default_version",
        table_name="retention_policies",
        postgresql_where=sa.text("agent IS NULL"),
    )
    op.drop_index("uq_retention_policies_tenant_agent_version", table_name="retention_policies")
    op.create_index(
        "uq_retention_policies_tenant_default",
        "retention_policies",
        ["tenant"],
        unique=True,
        postgresql_where=sa.text("agent IS NULL"),
    )
    op.create_index(
        "uq_retention_policies_tenant_agent", "retention_policies", ["tenant", "agent"], unique=True
    )
    # Calendar periods become a day count that is never shorter.
    op.execute(
        "UPDATE retention_policies SET keep_days = keep_days + 366 * keep_years + 31 * keep_months"
    )
    op.drop_constraint(
        op.f("ck_retention_policies_keep_valid"), "retention_policies", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_retention_policies_keep_days_positive"), "retention_policies", "keep_days > 0"
    )
    op.drop_column("retention_policies", "deleted")
    op.drop_column("retention_policies", "keep_years")
    op.drop_column("retention_policies", "keep_months")
    op.drop_column("retention_policies", "version")
    op.drop_index("ix_retention_changes_subject", table_name="retention_changes")
    op.drop_table("retention_changes")
