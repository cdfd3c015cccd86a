"""Tamper evidence with default settings: the recorder signs each session's head into the
checkpoint directory when it closes, and `auditagent verify` (and the API) hold the database
to it. A database superuser who edits consistently — rows, chain, the session's count and head
— is still caught, with no extra setup."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent.cli import main
from auditagent.integrity import chain, checkpoints
from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.api import auth, make_token, record_conversation

OFF = "ALTER TABLE events DISABLE TRIGGER events_append_only"
ON = "ALTER TABLE events ENABLE TRIGGER events_append_only"


def _relink(conn: psycopg.Connection[tuple[object, ...]], sid: uuid.UUID) -> None:
    """Renumber the session's remaining rows 0..n-1, recompute every hash, and set the
    session's count and head to match: a chain that verifies on its own."""
    rows = conn.execute(
        "SELECT seq, tenant, kind, at, key_id, nonce, ciphertext FROM events"
        " WHERE session_id = %s ORDER BY seq",
        (sid,),
    ).fetchall()
    conn.execute("UPDATE events SET seq = seq + 100000 WHERE session_id = %s", (sid,))
    prev = chain.GENESIS
    for new_seq, (old_seq, tenant, kind, at, key_id, nonce, ct) in enumerate(rows):
        h = chain.link(
            prev_hash=prev,
            session_id=sid,
            seq=new_seq,
            kind=str(kind),
            key_id=str(key_id),
            tenant=str(tenant),
            at=at,  # type: ignore[arg-type]
            nonce=bytes(nonce),  # type: ignore[arg-type]
            ciphertext=bytes(ct),  # type: ignore[arg-type]
        )
        conn.execute(
            "UPDATE events SET seq = %s, prev_hash = %s, hash = %s"
            " WHERE session_id = %s AND seq = %s",
            (new_seq, prev, h, sid, int(old_seq) + 100000),  # type: ignore[call-overload]
        )
        prev = h
    conn.execute(
        "UPDATE sessions SET event_count = %s, head_hash = %s WHERE id = %s",
        (len(rows), prev if rows else None, sid),
    )


def _delete_last_rows(conn: psycopg.Connection[tuple[object, ...]], sid: uuid.UUID) -> None:
    conn.execute("DELETE FROM events WHERE session_id = %s AND seq >= 8", (sid,))
    head = conn.execute(
        "SELECT hash FROM events WHERE session_id = %s AND seq = 7", (sid,)
    ).fetchone()
    assert head is not None
    conn.execute(
        "UPDATE sessions SET event_count = 8, head_hash = %s WHERE id = %s", (head[0], sid)
    )


def _delete_middle_row(conn: psycopg.Connection[tuple[object, ...]], sid: uuid.UUID) -> None:
    conn.execute("DELETE FROM events WHERE session_id = %s AND seq = 4", (sid,))
    _relink(conn, sid)


def _delete_every_event(conn: psycopg.Connection[tuple[object, ...]], sid: uuid.UUID) -> None:
    conn.execute("DELETE FROM events WHERE session_id = %s", (sid,))
    conn.execute("UPDATE sessions SET event_count = 0, head_hash = NULL WHERE id = %s", (sid,))


def _delete_session(conn: psycopg.Connection[tuple[object, ...]], sid: uuid.UUID) -> None:
    conn.execute("DELETE FROM events WHERE session_id = %s", (sid,))
    conn.execute("DELETE FROM data_keys WHERE session_id = %s", (sid,))
    conn.execute("DELETE FROM sessions WHERE id = %s", (sid,))


EDITS: dict[
    str, tuple[Callable[[psycopg.Connection[tuple[object, ...]], uuid.UUID], None], str]
] = {
    "last rows deleted, head and count rewritten": (
        _delete_last_rows,
        "chain truncated: 8 events, its signed checkpoint has 10",
    ),
    "middle row deleted, chain recomputed": (
        _delete_middle_row,
        "chain truncated: 9 events, its signed checkpoint has 10",
    ),
    "every event deleted": (_delete_every_event, "no records"),
    "whole session deleted": (
        _delete_session,
        "missing from the database, but its signed checkpoint",
    ),
}


def _superuser(url: str, edit: Callable[..., None], sid: uuid.UUID) -> None:
    with psycopg.connect(db.libpq_url(url)) as conn, conn.transaction():
        conn.execute(OFF)
        edit(conn, sid)
        conn.execute(ON)


@pytest.mark.parametrize("name", list(EDITS))
def test_superuser_edits_fail_verify_with_default_settings(
    name: str,
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edit, reason = EDITS[name]
    rec = record_conversation(settings, keyring, tenant=tenant)
    other = record_conversation(settings, keyring, tenant=tenant)
    url = settings.database_url or ""
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", url)
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(settings.data_dir))
    # Default settings: the close was signed into the data directory's checkpoints.
    assert (settings.resolved_checkpoint_dir / f"session-{rec.session_id}.ckpt").is_file()
    assert main(["verify", str(rec.session_id)]) == 0
    assert main(["verify", "--all", "--tenant", tenant]) == 0
    capsys.readouterr()

    _superuser(url, edit, rec.session_id)

    assert main(["verify", str(rec.session_id)]) == 1
    out = capsys.readouterr().out
    assert reason in out and "0/1 sessions valid" in out
    assert main(["verify", "--all", "--tenant", tenant]) == 1
    out = capsys.readouterr().out
    assert reason in out and "1/2 sessions valid" in out
    assert str(other.session_id) not in out
    assert main(["verify", "--all"]) == 1
    capsys.readouterr()
    h = auth(make_token(engine, "auditor", tenant))
    v = client.get(f"/v1/sessions/{rec.session_id}/verify", headers=h)
    if name == "whole session deleted":
        assert v.status_code == 404
    else:
        assert v.json()["ok"] is False and reason in v.json()["reason"]
        t = client.get(f"/v1/sessions/{rec.session_id}/transcript", headers=h)
        e = client.get(f"/v1/sessions/{rec.session_id}/events", headers=h)
        # /events answers exactly as /transcript: a flagged 200, or the same problem (a
        # renumbered row no longer decrypts: its seq is bound into the AES-GCM tag).
        assert t.status_code == e.status_code
        if t.status_code == 200:
            assert t.json()["integrity"] == e.json()["integrity"]
            assert t.json()["integrity"]["ok"] is False
        else:
            assert t.status_code == 409 and t.json()["type"] == e.json()["type"]


def test_a_closed_session_without_records_is_never_valid(
    settings: Settings,
    keyring: LocalKeyring,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Even with its checkpoint gone as well, an emptied session does not verify."""
    rec = record_conversation(settings, keyring, tenant=tenant)
    (settings.resolved_checkpoint_dir / f"session-{rec.session_id}.ckpt").unlink()
    _superuser(settings.database_url or "", _delete_every_event, rec.session_id)
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(settings.data_dir))
    assert main(["verify", str(rec.session_id)]) == 1
    assert "no records" in capsys.readouterr().out


def test_a_forged_session_checkpoint_fails_the_session(
    settings: Settings,
    keyring: LocalKeyring,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from datetime import datetime, timezone

    from auditagent.integrity import crypto

    rec = record_conversation(settings, keyring, tenant=tenant)
    path = settings.resolved_checkpoint_dir / f"session-{rec.session_id}.ckpt"
    fake = checkpoints.Checkpoint(
        origin=f"auditagent/session/{rec.session_id}",
        size=10,
        root=bytes(32),
        time=datetime.now(timezone.utc),
    )
    path.write_bytes(checkpoints.encode_note(fake, crypto.signing_key_generate()))
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(settings.data_dir))
    assert main(["verify", str(rec.session_id)]) == 1
    assert "does not verify" in capsys.readouterr().out


async def test_a_session_erased_during_its_call_gets_no_close_checkpoint(
    make_database: Callable[[], str], data_dir: Path, tenant: str
) -> None:
    """Its deletion record proves what was erased; records arriving afterwards under the
    destroyed key are not committed to by a checkpoint (retention clears them)."""
    import asyncio
    from datetime import datetime, timezone

    from auditagent import records as r
    from auditagent import retention
    from auditagent.recorder import AuditRecorder

    # A database of its own: signed retention refuses to act on a change log that other
    # tests' keyrings signed into the shared one.
    settings = Settings(database_url=make_database(), data_dir=data_dir, flush_interval=0.05)
    ring = LocalKeyring.init(settings.resolved_keyring_path)
    eng = db.make_engine(settings)
    async with AuditRecorder(settings, key_provider=ring) as recorder:
        rec = recorder.open_session(tenant=tenant, participant="alice-zanzibarquokka")
        rec.add(r.UserUtterance(at=datetime.now(timezone.utc), text="first", source="stt"))
        await recorder.flush()
        report = await asyncio.to_thread(
            retention.erase_participant,
            eng,
            ring,
            tenant=tenant,
            participant="alice-zanzibarquokka",
            reason="DSR-1",
            requested_by="dpo",
            settings=settings,
        )
        assert report.sessions_deleted == 1
        rec.add(r.UserUtterance(at=datetime.now(timezone.utc), text="after", source="stt"))
        rec.close(reason="done")
        other = recorder.open_session(tenant=tenant)
        other.close(reason="done")
        await recorder.flush()
    eng.dispose()
    ckpts = settings.resolved_checkpoint_dir
    assert not (ckpts / f"session-{rec.session_id}.ckpt").exists()
    assert (ckpts / f"session-{other.session_id}.ckpt").is_file()
