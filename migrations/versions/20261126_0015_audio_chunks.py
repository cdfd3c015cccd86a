"""audio chunks: sealed call audio, keyed by session, append-only like events

Revision ID: 0015
Revises: 0013
Create Date: 2026-11-26 12:30:00.000000
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Chunks never change; they are deleted only by the retention path (purge, erasure), which
# sets auditagent.allow_purge for its transaction, exactly as for events.
AUDIO_GUARD = """
CREATE OR REPLACE FUNCTION auditagent_audio_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE'
     AND coalesce(current_setting('auditagent.allow_purge', true), '') = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'auditagent: % on audio_chunks is not allowed: the table is append-only', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'audio is removed only by `auditagent retention run` or erasure';
END;
$$;
"""


def _app_role() -> str | None:
    config = op.get_context().config
    settings = config.attributes.get("settings") if config else None
    role = getattr(settings, "db_app_role", None)
    if role is None:
        role = os.environ.get("AUDITAGENT_DB_APP_ROLE") or None
    return role


def upgrade() -> None:
    op.create_table(
        "audio_chunks",
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("offset_samples", sa.BigInteger(), nullable=False),
        sa.Column("duration_samples", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "chunk_index >= 0 AND offset_samples >= 0 AND duration_samples >= 0 AND size >= 0",
            name=op.f("ck_audio_chunks_placement_valid"),
        ),
        sa.PrimaryKeyConstraint("session_id", "chunk_index", name=op.f("pk_audio_chunks")),
    )
    # Chunks are stored TOASTed already compressed (Opus): spare Postgres the futile attempt.
    op.execute("ALTER TABLE audio_chunks ALTER COLUMN ciphertext SET STORAGE EXTERNAL")
    op.execute(AUDIO_GUARD)
    op.execute(
        "CREATE TRIGGER audio_chunks_append_only BEFORE UPDATE OR DELETE ON audio_chunks "
        "FOR EACH ROW EXECUTE FUNCTION auditagent_audio_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audio_chunks_no_truncate BEFORE TRUNCATE ON audio_chunks "
        "FOR EACH STATEMENT EXECUTE FUNCTION auditagent_append_only()"
    )
    role = _app_role()
    if role:
        quoted = op.get_bind().dialect.identifier_preparer.quote(role)
        op.execute(f"GRANT SELECT, INSERT ON audio_chunks TO {quoted}")
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audio_chunks FROM {quoted}")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audio_chunks_no_truncate ON audio_chunks")
    op.execute("DROP TRIGGER IF EXISTS audio_chunks_append_only ON audio_chunks")
    op.execute("DROP FUNCTION IF EXISTS auditagent_audio_append_only()")
    op.drop_table("audio_chunks")
