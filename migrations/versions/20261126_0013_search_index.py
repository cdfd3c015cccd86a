"""search index: keyed, truncated word beacons per session and role, and per-session progress

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 12:50:00.000000
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("search_index", "search_index_sessions")


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
        "search_index",
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.SmallInteger(), nullable=False),
        sa.Column("token", sa.SmallInteger(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.CheckConstraint("role IN (1, 2, 3)", name=op.f("ck_search_index_role_valid")),
        sa.CheckConstraint("token >= 0", name=op.f("ck_search_index_token_nonnegative")),
        sa.PrimaryKeyConstraint(
            "session_id", "key_id", "role", "token", name=op.f("pk_search_index")
        ),
    )
    op.create_index(
        "ix_search_index_lookup",
        "search_index",
        ["tenant", "key_id", "token", "role", "session_id"],
        unique=False,
    )
    op.create_table(
        "search_index_sessions",
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column(
            "indexed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_search_index_sessions")),
    )
    op.create_index(
        "ix_search_index_sessions_tenant_key",
        "search_index_sessions",
        ["tenant", "key_id"],
        unique=False,
    )
    role = _app_role()
    if role:
        quoted = op.get_bind().dialect.identifier_preparer.quote(role)
        # The recorder adds rows and the API reads them; deleting them (erasure, reindex) is
        # the owner's, like every other deletion.
        op.execute(f"GRANT SELECT, INSERT ON {', '.join(TABLES)} TO {quoted}")


def downgrade() -> None:
    op.drop_index("ix_search_index_sessions_tenant_key", table_name="search_index_sessions")
    op.drop_table("search_index_sessions")
    op.drop_index("ix_search_index_lookup", table_name="search_index")
    op.drop_table("search_index")
