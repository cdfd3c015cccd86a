"""review UI sign-ins: server-side sign-ins and one-time sign-in tokens

Revision ID: 0012
Revises: 0017
Create Date: 2026-11-26 12:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ui_signins",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("principal_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('signin','once')", name=op.f("ck_ui_signins_kind_valid")),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_ui_signins_principal_id_principals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ui_signins")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_ui_signins_secret_hash")),
    )
    op.create_index("ix_ui_signins_principal", "ui_signins", ["principal_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ui_signins_principal", table_name="ui_signins")
    op.drop_table("ui_signins")
