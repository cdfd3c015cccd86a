"""search word filter: a per-session keyed Bloom filter of its words, on its index marker

One nullable ``bytea`` on ``search_index_sessions`` (one row per session, written at close or
by a reindex): no new table, nothing on the growing ``search_index``. The app role already
inserts these rows; it gets no UPDATE (a marker is written once, with its filter).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26 15:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "search_index_sessions", sa.Column("word_filter", sa.LargeBinary(), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("search_index_sessions", "word_filter")
