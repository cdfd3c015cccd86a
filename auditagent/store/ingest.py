"""The write path of the recorder: sessions, wrapped data keys and sealed events.

Events go in with binary COPY (the cheapest path Postgres has, see perf anchors); a replay from
the spool, which may repeat rows already committed, goes through a staging table and
``ON CONFLICT DO NOTHING`` so it is idempotent on (session_id, seq).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from ..envelope import Envelope

EVENT_COLUMNS = (
    "session_id",
    "seq",
    "tenant",
    "kind",
    "at",
    "key_id",
    "nonce",
    "ciphertext",
    "prev_hash",
    "hash",
)
EVENT_TYPES = [
    "uuid",
    "int4",
    "text",
    "text",
    "timestamptz",
    "text",
    "bytea",
    "bytea",
    "bytea",
    "bytea",
]


@dataclass
class SessionOpen:
    """The row a session starts with, plus its wrapped data key. No plaintext content."""

    session_id: uuid.UUID
    tenant: str
    started_at: datetime
    key_id: str
    master_key_id: str
    wrapped: bytes
    architecture: str | None = None
    agent_name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    participant_index: bytes | None = None
    models: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        d = asdict(self)
        d["session_id"] = str(self.session_id)
        d["started_at"] = self.started_at.isoformat()
        d["wrapped"] = base64.b64encode(self.wrapped).decode()
        d["participant_index"] = (
            base64.b64encode(self.participant_index).decode() if self.participant_index else None
        )
        return json.dumps(d, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionOpen:
        d = json.loads(data)
        d["session_id"] = uuid.UUID(d["session_id"])
        d["started_at"] = datetime.fromisoformat(d["started_at"])
        d["wrapped"] = base64.b64decode(d["wrapped"])
        pi = d.get("participant_index")
        d["participant_index"] = base64.b64decode(pi) if pi else None
        return cls(**d)


@dataclass
class SessionUpdate:
    """What a batch changed about a session: counts, head, tools seen, close."""

    session_id: uuid.UUID
    event_count: int
    head_hash: bytes
    tool_names: list[str] = field(default_factory=list)
    ended_at: datetime | None = None
    close_reason: str | None = None
    architecture: str | None = None
    agent_name: str | None = None
    models: dict[str, Any] | None = None

    def to_bytes(self) -> bytes:
        d = asdict(self)
        d["session_id"] = str(self.session_id)
        d["head_hash"] = self.head_hash.hex()
        d["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        return json.dumps(d, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionUpdate:
        d = json.loads(data)
        d["session_id"] = uuid.UUID(d["session_id"])
        d["head_hash"] = bytes.fromhex(d["head_hash"])
        d["ended_at"] = datetime.fromisoformat(d["ended_at"]) if d["ended_at"] else None
        return cls(**d)


_INSERT_SESSION = """
INSERT INTO sessions (id, tenant, started_at, architecture, agent_name, labels,
                      participant_index, models, status)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'open')
ON CONFLICT (id) DO NOTHING
"""

_INSERT_KEY = """
INSERT INTO data_keys (session_id, key_id, tenant, master_key_id, wrapped)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (session_id) DO NOTHING
"""

# Updates are monotonic (GREATEST / COALESCE / set union) so replaying them twice, or out of
# order with a later live update, cannot move a session backwards.
_UPDATE_SESSION = """
UPDATE sessions SET
  head_hash = CASE WHEN %(count)s >= event_count THEN %(head)s ELSE head_hash END,
  event_count = GREATEST(event_count, %(count)s),
  tool_names = ARRAY(SELECT DISTINCT t FROM unnest(tool_names || %(tools)s::text[]) AS t ORDER BY t),
  ended_at = COALESCE(ended_at, %(ended_at)s),
  close_reason = COALESCE(close_reason, %(reason)s),
  status = CASE WHEN %(ended_at)s IS NOT NULL AND status = 'open' THEN 'closed' ELSE status END,
  architecture = COALESCE(%(architecture)s, architecture),
  agent_name = COALESCE(%(agent_name)s, agent_name),
  models = CASE WHEN %(models)s::jsonb IS NULL THEN models ELSE %(models)s::jsonb END,
  updated_at = now()
WHERE id = %(id)s AND status IN ('open', 'closed')
"""


async def write_batch(
    conn: psycopg.AsyncConnection[Any],
    *,
    opens: Sequence[SessionOpen] = (),
    envelopes: Sequence[Envelope] = (),
    updates: Sequence[SessionUpdate] = (),
    idempotent: bool = False,
) -> None:
    """Write one batch in one transaction."""
    from psycopg.types.json import Jsonb

    async with conn.transaction(), conn.cursor() as cur:
        if opens:
            await cur.executemany(
                _INSERT_SESSION,
                [
                    (
                        o.session_id,
                        o.tenant,
                        o.started_at,
                        o.architecture,
                        o.agent_name,
                        Jsonb(o.labels),
                        o.participant_index,
                        Jsonb(o.models),
                    )
                    for o in opens
                ],
            )
            await cur.executemany(
                _INSERT_KEY,
                [(o.session_id, o.key_id, o.tenant, o.master_key_id, o.wrapped) for o in opens],
            )
        if envelopes:
            if idempotent:
                await _copy_idempotent(cur, envelopes)
            else:
                await _copy(cur, "events", envelopes)
        if updates:
            await cur.executemany(
                _UPDATE_SESSION,
                [
                    {
                        "id": u.session_id,
                        "count": u.event_count,
                        "head": u.head_hash,
                        "tools": u.tool_names,
                        "ended_at": u.ended_at,
                        "reason": u.close_reason,
                        "architecture": u.architecture,
                        "agent_name": u.agent_name,
                        "models": Jsonb(u.models) if u.models is not None else None,
                    }
                    for u in updates
                ],
            )


async def _copy(cur: psycopg.AsyncCursor[Any], table: str, envelopes: Sequence[Envelope]) -> None:
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS))
    )
    async with cur.copy(stmt) as cp:
        cp.set_types(EVENT_TYPES)
        for e in envelopes:
            await cp.write_row(
                (
                    e.session_id,
                    e.seq,
                    e.tenant,
                    e.kind,
                    e.at,
                    e.key_id,
                    e.nonce,
                    e.ciphertext,
                    e.prev_hash,
                    e.hash,
                )
            )


async def _copy_idempotent(cur: psycopg.AsyncCursor[Any], envelopes: Sequence[Envelope]) -> None:
    await cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS events_stage"
        " (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await _copy(cur, "events_stage", envelopes)
    cols = ", ".join(EVENT_COLUMNS)
    await cur.execute(
        f"INSERT INTO events ({cols}) SELECT {cols} FROM events_stage"
        " ORDER BY session_id, seq ON CONFLICT (session_id, seq) DO NOTHING"
    )
