"""The write path of the recorder: sessions, wrapped data keys and sealed events.

Events go in with binary COPY (the cheapest path Postgres has, see perf anchors); a replay from
the spool, which may repeat rows already committed, goes through a staging table and
``ON CONFLICT DO NOTHING`` so it is idempotent on the key (session_id, seq, session_started_at).

``session_started_at`` (the partition key, migration 0016) is the session's start, known to the
writer from the session it seals for; a replayed batch may not carry its sessions' opening rows,
so the replay takes it from ``sessions`` instead (the row that decides it).
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import sql

from ..audio.sealing import SealedChunk
from ..audio.store import insert_chunks
from ..integrity.envelope import Envelope
from ..store.search_rows import IndexRows, write_rows_async

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
    "session_started_at",
)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)
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
    "timestamptz",
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
    notice: str | None = None
    """'incomplete' or 'completed' once known (a completed notice is never undone)."""

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
# order with a later live update, cannot move a session backwards. One statement per batch,
# whatever the number of sessions it touched.
_UPDATE_SESSIONS = """
UPDATE sessions AS s SET
  head_hash = CASE WHEN u.count >= s.event_count THEN decode(u.head, 'hex') ELSE s.head_hash END,
  event_count = GREATEST(s.event_count, u.count),
  tool_names = CASE WHEN cardinality(u.tools) = 0 THEN s.tool_names ELSE
    ARRAY(SELECT DISTINCT t FROM unnest(s.tool_names || u.tools) AS t ORDER BY t) END,
  ended_at = COALESCE(s.ended_at, u.ended_at),
  close_reason = COALESCE(s.close_reason, u.reason),
  status = CASE WHEN u.ended_at IS NOT NULL AND s.status = 'open' THEN 'closed' ELSE s.status END,
  architecture = COALESCE(u.architecture, s.architecture),
  agent_name = COALESCE(u.agent_name, s.agent_name),
  models = COALESCE(u.models, s.models),
  notice = CASE WHEN s.notice = 'completed' THEN s.notice ELSE COALESCE(u.notice, s.notice) END,
  updated_at = now()
FROM jsonb_to_recordset(%s::jsonb) AS u(
  id uuid, count int, head text, tools text[], ended_at timestamptz, reason text,
  architecture text, agent_name text, models jsonb, notice text)
WHERE s.id = u.id AND s.status IN ('open', 'closed')
RETURNING s.id, u.ended_at IS NOT NULL
"""


async def write_batch(
    conn: psycopg.AsyncConnection[Any],
    *,
    opens: Sequence[SessionOpen] = (),
    envelopes: Sequence[Envelope] = (),
    updates: Sequence[SessionUpdate] = (),
    index: Sequence[IndexRows] = (),
    idempotent: bool = False,
    copy_data: bytes | None = None,
    started: Mapping[uuid.UUID, datetime] | None = None,
    audio: Sequence[SealedChunk] = (),
) -> set[uuid.UUID]:
    """Write one batch in one transaction; returns the sessions whose close it applied.

    ``copy_data`` is ``envelopes`` already encoded with :func:`encode_copy_binary` (the
    recorder encodes on its loop in slices); without it the envelopes are encoded here, with
    ``started`` (each session's start; the opens' own when not given). A
    session erased meanwhile (shredded or purged) takes no update, so it is not returned."""
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
        if envelopes or copy_data is not None:
            if copy_data is None:
                known = {o.session_id: o.started_at for o in opens}
                known.update(started or {})
                data = encode_copy_binary(envelopes, known)
            else:
                data = copy_data
            if idempotent:
                await _copy_idempotent(cur, data)
            else:
                await _copy(cur, "events", data)
        if index:
            await write_rows_async(cur, index)
        # with the batch that carries their audio records: a committed record has its chunk
        await insert_chunks(cur, audio)
        if updates:
            updates = _merge_updates(updates)
            rows = [
                {
                    "id": str(u.session_id),
                    "count": u.event_count,
                    "head": u.head_hash.hex(),
                    "tools": u.tool_names,
                    "ended_at": u.ended_at.isoformat() if u.ended_at else None,
                    "reason": u.close_reason,
                    "architecture": u.architecture,
                    "agent_name": u.agent_name,
                    "models": u.models,
                    "notice": u.notice,
                }
                for u in updates
            ]
            await cur.execute(_UPDATE_SESSIONS, (Jsonb(rows),))
            return {sid for sid, closing in await cur.fetchall() if closing}
    return set()


def _merge_updates(updates: Sequence[SessionUpdate]) -> list[SessionUpdate]:
    """One update per session: an UPDATE ... FROM applies only one source row per target row,
    and a spool replay can carry several updates of the same session."""
    merged: dict[uuid.UUID, SessionUpdate] = {}
    for u in updates:
        m = merged.get(u.session_id)
        if m is None:
            merged[u.session_id] = SessionUpdate(**{**asdict(u), "tool_names": list(u.tool_names)})
            continue
        if u.event_count >= m.event_count:
            m.event_count, m.head_hash = u.event_count, u.head_hash
        m.tool_names += [t for t in u.tool_names if t not in m.tool_names]
        m.ended_at = m.ended_at or u.ended_at
        m.close_reason = m.close_reason or u.close_reason
        m.architecture = u.architecture or m.architecture
        m.agent_name = u.agent_name or m.agent_name
        m.models = u.models if u.models is not None else m.models
        if m.notice != "completed":
            m.notice = u.notice or m.notice
    return list(merged.values())


COPY_CHUNK_BYTES = 64 * 1024
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_PGCOPY_TRAILER = struct.pack(">h", -1)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds
_ROW_HEAD = struct.Struct(">hi16si")  # field count; uuid (len, 16 bytes); int4 length
_I4 = struct.Struct(">i")
_I4_I4 = struct.Struct(">ii")
_I4_Q = struct.Struct(">iq")


def encode_copy_binary(
    envelopes: Sequence[Envelope], started: Mapping[uuid.UUID, datetime]
) -> bytes:
    """Envelopes as one PostgreSQL binary COPY stream (header, tuples, trailer).

    Encoding the stream by hand costs a fraction of psycopg's per-row ``write_row`` (which
    dispatches a dumper per value); the layout is the documented COPY BINARY file format.
    """
    return COPY_HEADER + encode_copy_rows(envelopes, started) + COPY_TRAILER


COPY_HEADER = _PGCOPY_HEADER
COPY_TRAILER = _PGCOPY_TRAILER


def encode_copy_rows(envelopes: Sequence[Envelope], started: Mapping[uuid.UUID, datetime]) -> bytes:
    """The tuples of a binary COPY stream, without header and trailer: a caller that must not
    hold its event loop for long encodes a large batch in slices and joins them.

    A session missing from ``started`` gets a NULL start: the live COPY into ``events`` then
    fails (NOT NULL), a replay fills it in from ``sessions``."""
    buf = bytearray()
    i4 = _I4.pack
    null = i4(-1)
    starts: dict[uuid.UUID, bytes] = {}
    for sid, at in started.items():
        starts[sid] = _I4_Q.pack(8, (at - _UNIX_EPOCH) // _ONE_US - _PG_EPOCH_US)
    for e in envelopes:
        tenant = e.tenant.encode()
        kind = e.kind.encode()
        key_id = e.key_id.encode()
        at_us = (e.at - _UNIX_EPOCH) // _ONE_US - _PG_EPOCH_US
        buf += _ROW_HEAD.pack(len(EVENT_COLUMNS), 16, e.session_id.bytes, 4)
        buf += i4(e.seq)
        buf += i4(len(tenant))
        buf += tenant
        buf += i4(len(kind))
        buf += kind
        buf += _I4_Q.pack(8, at_us)
        buf += i4(len(key_id))
        buf += key_id
        for b in (e.nonce, e.ciphertext, e.prev_hash, e.hash):
            buf += i4(len(b))
            buf += b
        buf += starts.get(e.session_id, null)
    return bytes(buf)


_KEY = "session_id, seq, session_started_at"


async def _copy(cur: psycopg.AsyncCursor[Any], table: str, data: bytes) -> None:
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS))
    )
    async with cur.copy(stmt) as cp:
        # In pieces, giving the event loop back in between: psycopg hands a buffer the socket
        # accepts to libpq without yielding, however large it is.
        view = memoryview(data)
        for i in range(0, len(view), COPY_CHUNK_BYTES):
            if i:
                await asyncio.sleep(0)
            await cp.write(view[i : i + COPY_CHUNK_BYTES])


async def _copy_idempotent(cur: psycopg.AsyncCursor[Any], data: bytes) -> None:
    # Dropped at commit: nothing may outlive the transaction behind a transaction-pooling
    # PgBouncer, whose next client on this server connection is somebody else.
    # No constraints copied (CREATE ... AS): session_started_at may arrive NULL here.
    cols = ", ".join(EVENT_COLUMNS)
    await cur.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS events_stage ON COMMIT DROP AS SELECT {cols}"
        " FROM events WITH NO DATA"
    )
    await _copy(cur, "events_stage", data)
    picked = ", ".join(
        "COALESCE(s.started_at, st.session_started_at)" if c == "session_started_at" else f"st.{c}"
        for c in EVENT_COLUMNS
    )
    await cur.execute(
        f"INSERT INTO events ({cols}) SELECT {picked} FROM events_stage st"
        " LEFT JOIN sessions s ON s.id = st.session_id"
        f" ORDER BY st.session_id, st.seq ON CONFLICT ({_KEY}) DO NOTHING"
    )
