"""Signed checkpoints outside the database, tested with forged and tampered inputs: a wrong
signature, an edited manifest, a removed checkpoint, a superuser who rewrites a whole session
chain consistently, deletes a session outside the retention path, or rolls back the deletion
records."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from auditagent import retention
from auditagent.cli import main
from auditagent.integrity import chain, chain_verifier, checkpoints, crypto
from auditagent.integrity.checkpoints import Checkpoint, DirectorySink
from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.retention import record_sessions


@pytest.fixture
def sink(tmp_path: Path) -> DirectorySink:
    return DirectorySink(tmp_path / "checkpoints")


def _verify(engine: Engine, sink: DirectorySink, keyring: LocalKeyring) -> checkpoints.VerifyReport:
    return checkpoints.verify_checkpoints(engine, sink, public_key=keyring.signing_public_key())


def _sql(settings: Settings, *statements: tuple[str, tuple[object, ...]]) -> None:
    assert settings.database_url
    with psycopg.connect(db.libpq_url(settings.database_url)) as conn:
        for sql, params in statements:
            conn.execute(sql, params)


def test_note_round_trip_and_forged_signatures(keyring: LocalKeyring) -> None:
    cp = Checkpoint(
        origin="auditagent/global",
        size=3,
        root=bytes(range(32)),
        time=datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc),
        extensions=("deletions 0 " + base64.b64encode(bytes(32)).decode(), "prev -"),
    )
    note = checkpoints.encode_note(cp, keyring.signing_key())
    text = note.decode()
    assert text.startswith("auditagent/global\n3\n")
    assert "\n\n\u2014 auditagent " in text
    assert checkpoints.parse_note(note, keyring.signing_public_key()) == cp

    # A valid-looking checkpoint signed by another key, with our key id pasted in.
    other = crypto.signing_key_generate()
    forged = checkpoints.encode_note(cp, other)
    body, _, sig_line = forged.decode().partition("\n\n")
    raw = base64.b64decode(sig_line.split(" ")[2])
    kid = checkpoints.key_id(keyring.signing_public_key())
    pasted = f"{body}\n\n\u2014 auditagent {base64.b64encode(kid + raw[4:]).decode()}\n"
    for bad in (
        forged,
        pasted.encode(),
        note.replace(b"\n3\n", b"\n4\n", 1),  # size changed after signing
        note.split(b"\n\n")[0] + b"\n",  # signature stripped
    ):
        with pytest.raises(checkpoints.CheckpointInvalid):
            checkpoints.parse_note(bad, keyring.signing_public_key())


def test_untouched_database_verifies_and_forged_checkpoint_is_reported(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine, sink: DirectorySink
) -> None:
    a, _ = record_sessions(fresh_settings, keyring, [("acme", "a", "x"), ("acme", "b", "x")])
    checkpoints.write_global_checkpoint(engine, keyring, sink)
    checkpoints.write_session_checkpoint(
        sink,
        keyring,
        checkpoints.ClosedSessionHead(a.session_id, 5, _head(fresh_settings, a.session_id)),
    )
    report = _verify(engine, sink, keyring)
    assert report.ok, report.lines()
    assert report.lines()[-1].startswith("2/2 checkpoints valid, 2/2 sessions consistent")

    # A forger drops in a checkpoint signed with another key claiming a different head.
    fake = Checkpoint(
        origin=f"auditagent/session/{a.session_id}",
        size=5,
        root=bytes(32),
        time=datetime.now(timezone.utc),
    )
    sink.append(
        "session-zzz-forged.ckpt", checkpoints.encode_note(fake, crypto.signing_key_generate())
    )
    report = _verify(engine, sink, keyring)
    assert not report.ok
    assert any("forged.ckpt: no valid signature" in p for p in report.problems)
    assert report.sessions_valid == 2  # the forged claim was not believed


def _head(settings: Settings, session_id: uuid.UUID) -> bytes:
    assert settings.database_url
    with psycopg.connect(db.libpq_url(settings.database_url)) as conn:
        row = conn.execute("SELECT head_hash FROM sessions WHERE id = %s", (session_id,)).fetchone()
    assert row is not None
    return bytes(row[0])


def test_superuser_rewriting_a_whole_chain_is_caught(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine, sink: DirectorySink
) -> None:
    (s,) = record_sessions(fresh_settings, keyring, [("acme", "a", "x")])
    checkpoints.write_global_checkpoint(engine, keyring, sink)
    assert fresh_settings.database_url
    # Replace record 1 and recompute every later hash and the session head: the chain in the
    # database is consistent again and verifies on its own.
    with psycopg.connect(db.libpq_url(fresh_settings.database_url)) as conn:
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        rows = conn.execute(
            "SELECT session_id, seq, tenant, kind, at, key_id, nonce, ciphertext FROM events "
            "WHERE session_id = %s ORDER BY seq",
            (s.session_id,),
        ).fetchall()
        prev = chain.GENESIS
        for sid, seq, tenant, kind, at, key_id, nonce, ct in rows:
            ct = bytes(ct)
            if seq == 1:
                ct = bytes([ct[0] ^ 1]) + ct[1:]
            h = chain.link(
                prev_hash=prev,
                session_id=sid,
                seq=seq,
                kind=kind,
                key_id=key_id,
                tenant=tenant,
                at=at,
                nonce=bytes(nonce),
                ciphertext=ct,
            )
            conn.execute(
                "UPDATE events SET ciphertext = %s, prev_hash = %s, hash = %s "
                "WHERE session_id = %s AND seq = %s",
                (ct, prev, h, sid, seq),
            )
            prev = h
        conn.execute("UPDATE sessions SET head_hash = %s WHERE id = %s", (prev, s.session_id))
        conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
    from auditagent.store import sessions as session_store

    with engine.connect() as conn:
        assert chain_verifier.verify(
            session_store.iter_session_events(conn, s.session_id), expected_head=prev
        ).ok
    report = _verify(engine, sink, keyring)
    assert not report.ok
    assert any(str(s.session_id) in p and "head hash mismatch" in p for p in report.problems)


def test_session_deleted_outside_retention_is_caught(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine, sink: DirectorySink
) -> None:
    a, _b = record_sessions(fresh_settings, keyring, [("acme", "a", "x"), ("acme", "b", "x")])
    checkpoints.write_global_checkpoint(engine, keyring, sink)
    _sql(
        fresh_settings,
        ("ALTER TABLE events DISABLE TRIGGER events_append_only", ()),
        ("DELETE FROM events WHERE session_id = %s", (a.session_id,)),
        ("DELETE FROM data_keys WHERE session_id = %s", (a.session_id,)),
        ("DELETE FROM sessions WHERE id = %s", (a.session_id,)),
        ("ALTER TABLE events ENABLE TRIGGER events_append_only", ()),
    )
    report = _verify(engine, sink, keyring)
    assert not report.ok
    assert any(
        f"session {a.session_id}: missing from the database and has no deletion record" in p
        for p in report.problems
    )
    assert report.sessions_valid == 1  # b is fine


def test_legitimate_purge_verifies_but_a_purge_of_more_than_recorded_does_not(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine, sink: DirectorySink
) -> None:
    a, b = record_sessions(
        fresh_settings, keyring, [("acme", "a", "x"), ("acme", "b", "x")], ended_days_ago=31
    )
    checkpoints.write_global_checkpoint(engine, keyring, sink)
    # b loses a record before the real run.
    _sql(
        fresh_settings,
        ("ALTER TABLE events DISABLE TRIGGER events_append_only", ()),
        ("DELETE FROM events WHERE session_id = %s AND seq = 3", (b.session_id,)),
        ("ALTER TABLE events ENABLE TRIGGER events_append_only", ()),
    )
    assert retention.run_retention(engine, fresh_settings).sessions_deleted == 2
    checkpoints.write_global_checkpoint(engine, keyring, sink)
    report = _verify(engine, sink, keyring)
    assert [p for p in report.problems if str(a.session_id) in p] == []
    assert any(
        str(b.session_id) in p and "5 events were checkpointed" in p and "only 4" in p
        for p in report.problems
    )


def test_rolled_back_deletion_records_and_removed_checkpoint_are_caught(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine, sink: DirectorySink
) -> None:
    record_sessions(
        fresh_settings, keyring, [("acme", "a", "x"), ("acme", "b", "x")], ended_days_ago=31
    )
    now = datetime.now(timezone.utc)
    retention.run_retention(engine, fresh_settings)
    checkpoints.write_global_checkpoint(engine, keyring, sink, now=now)
    checkpoints.write_global_checkpoint(engine, keyring, sink, now=now + timedelta(hours=1))
    checkpoints.write_global_checkpoint(engine, keyring, sink, now=now + timedelta(hours=2))
    assert _verify(engine, sink, keyring).ok

    # The middle checkpoint disappears from the sink: the next one no longer chains.
    middle = sorted(p for p in sink.directory.iterdir() if p.suffix == ".ckpt")[1]
    middle.unlink()
    report = _verify(engine, sink, keyring)
    assert any("does not chain to the previous global checkpoint" in p for p in report.problems)

    # A superuser removes the last deletion record (and the session it proved).
    _sql(
        fresh_settings,
        ("ALTER TABLE deletion_records DISABLE TRIGGER deletion_records_append_only", ()),
        ("DELETE FROM deletion_records WHERE seq = 1", ()),
        ("ALTER TABLE deletion_records ENABLE TRIGGER deletion_records_append_only", ()),
    )
    report = _verify(engine, sink, keyring)
    assert any(
        "committed to 2 records, the database has 1 (rolled back)" in p for p in report.problems
    )
    assert any("has no deletion record" in p for p in report.problems)


def test_edited_manifest_is_caught(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine, sink: DirectorySink
) -> None:
    record_sessions(fresh_settings, keyring, [("acme", "a", "x")])
    checkpoints.write_global_checkpoint(engine, keyring, sink)
    (manifest,) = [p for p in sink.directory.iterdir() if p.suffix == ".manifest"]
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:-1]) + ("\n" if len(lines) > 1 else ""))
    report = _verify(engine, sink, keyring)
    assert any("manifest does not match the signed hash" in p for p in report.problems)


def test_cli_checkpoint_write_and_verify_with_a_public_key(
    fresh_settings: Settings,
    keyring: LocalKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    assert fresh_settings.database_url
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", fresh_settings.database_url)
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(fresh_settings.data_dir))
    record_sessions(fresh_settings, keyring, [("acme", "a", "x")])
    out_dir = tmp_path / "worm"
    assert main(["checkpoint", "write", "--dir", str(out_dir)]) == 0
    assert "1 sessions, deletions 0" in capsys.readouterr().out
    public = base64.b64encode(keyring.signing_public_key()).decode()
    assert main(["checkpoint", "verify", "--dir", str(out_dir), "--public-key", public]) == 0
    assert "1/1 checkpoints valid, 1/1 sessions consistent" in capsys.readouterr().out
    wrong = base64.b64encode(crypto.signing_public_key(crypto.signing_key_generate())).decode()
    assert main(["checkpoint", "verify", "--dir", str(out_dir), "--public-key", wrong]) == 1
    out = capsys.readouterr().out
    assert "no valid signature" in out and "0/1 checkpoints valid" in out
    # An empty directory is not a pass.
    assert main(["checkpoint", "verify", "--dir", str(tmp_path / "empty")]) == 1


def test_global_checkpoint_key_id_follows_signed_note_rule(keyring: LocalKeyring) -> None:
    pub = keyring.signing_public_key()
    assert checkpoints.key_id(pub) == hashlib.sha256(b"auditagent\n\x01" + pub).digest()[:4]


def test_verify_all_with_checkpoints_counts_purged_sessions_by_their_deletion_record(
    fresh_settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    assert fresh_settings.database_url
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", fresh_settings.database_url)
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(fresh_settings.data_dir))
    record_sessions(fresh_settings, keyring, [("acme", "a", "x")], ended_days_ago=31)
    (b,) = record_sessions(fresh_settings, keyring, [("acme", "b", "x")])
    sink = DirectorySink(tmp_path / "ck")
    checkpoints.write_global_checkpoint(engine, keyring, sink)
    retention.run_retention(engine, fresh_settings)
    checkpoints.write_global_checkpoint(engine, keyring, sink)
    args = ["verify", "--all", "--checkpoints", str(sink.directory)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2/2 sessions valid" in out and "2/2 checkpoints valid" in out
    # b is then deleted outside the retention path.
    _sql(
        fresh_settings,
        ("ALTER TABLE events DISABLE TRIGGER events_append_only", ()),
        ("DELETE FROM events WHERE session_id = %s", (b.session_id,)),
        ("DELETE FROM sessions WHERE id = %s", (b.session_id,)),
        ("ALTER TABLE events ENABLE TRIGGER events_append_only", ()),
    )
    assert main(args) == 1
    out = capsys.readouterr().out
    # the database alone cannot tell; the checkpoint signed when b closed does
    assert "1/2 sessions valid" in out
    assert f"session {b.session_id}: missing from the database" in out


def test_recorder_signs_a_checkpoint_when_a_session_closes(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine, sink: DirectorySink
) -> None:
    import asyncio

    from auditagent import records as r
    from auditagent.recorder import AuditRecorder

    async def go() -> uuid.UUID:
        async with AuditRecorder(
            fresh_settings,
            key_provider=keyring,
            on_sessions_closed=checkpoints.on_close_writer(fresh_settings, keyring, sink),
        ) as recorder:
            rec = recorder.open_session(tenant="acme", participant="p")
            rec.add(r.UserUtterance(at=datetime.now(timezone.utc), text="hi", source="stt"))
            rec.close(reason="done")
            await recorder.flush()
            return rec.session_id

    sid = asyncio.run(go())
    (name,) = [n for n, _ in sink.items()]
    assert name.startswith("session-") and name.endswith(f"{sid}.ckpt")
    cp = checkpoints.parse_note(dict(sink.items())[name], keyring.signing_public_key())
    assert (cp.session_id, cp.size, cp.root) == (sid, 3, _head(fresh_settings, sid))
    assert _verify(engine, sink, keyring).ok
