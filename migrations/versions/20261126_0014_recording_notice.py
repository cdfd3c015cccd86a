"""recording notice: sessions.notice says whether the recording notice was heard in full

Revision ID: 0014
Revises: 0015
Create Date: 2026-11-26 12:40:00.000000
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _app_role() -> str | None:
    settings = (
        op.get_context().config.attributes.get("settings") if op.get_context().config else None
    )
    role = getattr(settings, "db_app_role", None)
    if role is None:
        role = os.environ.get("AUDITAGENT_DB_APP_ROLE") or None
    return role


def upgrade() -> None:
    # NULL: no notice was asked for; 'incomplete': asked for, not (yet) heard in full;
    # 'completed': played to the end with no one speaking over it. Written by the recorder.
    op.add_column("sessions", sa.Column("notice", sa.String(16), nullable=True))
    op.create_check_constraint(
        "notice_valid", "sessions", "notice IS NULL OR notice IN ('completed','incomplete')"
    )
    role = _app_role()
    if role:
        quoted = op.get_bind().dialect.identifier_preparer.quote(role)
        op.execute(f"GRANT UPDATE (notice) ON sessions TO {quoted}")


def downgrade() -> None:
    role = _app_role()
    if role:
        quoted = op.get_bind().dialect.identifier_preparer.quote(role)
        op.execute(f"REVOKE UPDATE (notice) ON sessions FROM {quoted}")
    op.drop_constraint("notice_valid", "sessions", type_="check")
    op.drop_column("sessions", "notice")
