"""Test helpers that read what the recorder stored, through the same crypto the API uses."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg

from auditagent import records
from auditagent.integrity import chain_verifier, crypto
from auditagent.integrity.envelope import Envelope, dek_context, open_envelope
from auditagent.keys import KeyProvider, WrappedKey
from auditagent.store import db


def read_records(url: str, session_id: uuid.UUID, kp: KeyProvider) -> list[records.Record]:
    """Decrypt one session's records from the database, checking the chain on the way."""
    with psycopg.connect(db.libpq_url(url)) as conn:
        key = conn.execute(
            "SELECT key_id, tenant, master_key_id, wrapped FROM data_keys WHERE session_id = %s",
            (session_id,),
        ).fetchone()
        assert key is not None, f"no data key for session {session_id}"
        rows = conn.execute(
            "SELECT session_id, seq, tenant, kind, at, key_id, nonce, ciphertext, prev_hash, hash"
            " FROM events WHERE session_id = %s ORDER BY seq",
            (session_id,),
        ).fetchall()
    key_id, tenant, master_key_id, wrapped = key
    dk = kp.unwrap(
        WrappedKey(master_key_id=master_key_id, blob=wrapped),
        context=dek_context(tenant=tenant, session_id=session_id, key_id=key_id),
    )
    sealer = crypto.Sealer(dk)
    envs = [Envelope(*r) for r in rows]
    result = chain_verifier.verify(envs)
    assert result.ok, f"chain broken: {result}"
    return [records.decode(open_envelope(sealer, e)) for e in envs]


def assert_no_plaintext(url: str, spool_dir: Path | None, *canaries: str) -> None:
    """No canary phrase anywhere in a full dump of the database, nor in the spool."""
    # Read every value of every table as the driver returns it (bytea as raw bytes, so plaintext
    # hidden in a bytea column would show), rather than pg_dump, whose version must match.
    chunks: list[bytes] = []
    with psycopg.connect(db.libpq_url(url)) as conn:
        tables = [
            t
            for (t,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        for t in tables:
            for row in conn.execute(f'SELECT * FROM "{t}"'):
                for v in row:
                    chunks.append(
                        bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode()
                    )
    dump = b"\x00".join(chunks)
    for c in canaries:
        for form in {c.encode(), c.encode("utf-16-le"), c.lower().encode()}:
            assert form not in dump, f"canary {c!r} found in plaintext in the database"
    if spool_dir is not None and spool_dir.exists():
        for f in spool_dir.rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                for c in canaries:
                    assert c.encode() not in data, f"canary {c!r} found in spool file {f}"


def by_kind(recs: list[records.Record], kind: str) -> list[records.Record]:
    return [r for r in recs if r.kind == kind]


def text_values(record: records.Record) -> list[str]:
    """Every string field of a record, nested ones included (never numbers or times): where
    a canary word is looked for, so a latency float cannot match it by chance."""
    out: list[str] = []

    def walk(v: object) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    walk(record.model_dump(mode="python"))
    return out
