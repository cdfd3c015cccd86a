"""The fast read path: ``records.decode`` via pydantic's JSON parser with the stdlib fallback,
``SessionOpener``'s associated data, ``read_verified`` (decrypt + chain in one pass)
against ``chain.verify`` / ``open_records``, and the transcript's ``integrity`` report."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent import records
from auditagent import records as r
from auditagent.errors import IntegrityError
from auditagent.integrity import chain, chain_verifier, crypto
from auditagent.integrity.envelope import Envelope, SessionOpener, SessionSealer, aad
from auditagent.keys import LocalKeyring
from auditagent.reading.decrypt import OpenedRecord, RecordUnreadable, open_records, read_verified
from auditagent.reading.transcript import Timing, transcript_entries
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.api import auth, make_token, record_conversation

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


# --- records.decode --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "lone \ud800 surrogate",
        "\udfff",
        "nul\x00byte",
        "both \x00 and \udc80 and é 😀",
        "x" * (1 << 20),
        "y" * (1 << 20) + "\ud800",
    ],
    ids=["lone-high", "lone-low", "nul", "mixed", "1mb", "1mb-surrogate"],
)
def test_decode_round_trips_hostile_text(text: str) -> None:
    rec = r.UserUtterance(at=T0, text=text, source="stt", item_id="i\ud800")
    data = records.encode(rec)
    data.decode("ascii")  # always ASCII JSON
    back = records.decode(data)
    assert back == rec
    assert isinstance(back, r.UserUtterance) and back.text == text


def test_decode_fallback_matches_stdlib_path() -> None:
    details: dict[str, Any] = {"k\ud800": ["v\udfff", 1, 2.5, None], "nan": float("nan")}
    rec = r.Notice(at=T0, code="c", message="m\x00", details=details)
    data = records.encode(rec)
    back = records.decode(data)
    ref = records.RECORD_ADAPTER.validate_python(__import__("json").loads(data))
    assert isinstance(back, r.Notice) and repr(back) == repr(ref)  # repr: nan != nan
    assert list(back.details) == ["k\ud800", "nan"]


def test_decode_still_refuses_garbage() -> None:
    for bad in (b"", b"{", b'{"kind": "nope", "at": "2026-01-01T00:00:00Z"}', b"\xff\xfe"):
        with pytest.raises(ValueError):
            records.decode(bad)


# --- SessionOpener ---------------------------------------------------------------------------


def test_session_opener_aad_is_byte_identical() -> None:
    sid = uuid.uuid4()
    opener = SessionOpener(crypto.Sealer(bytes(32)), tenant="acme", session_id=sid, key_id="k1")
    for seq, kind in [(0, "opened"), (1, "user_utterance"), (2**40, "é\x00"), (3, "opened")]:
        assert opener.aad(seq=seq, kind=kind) == aad(
            tenant="acme", session_id=sid, seq=seq, kind=kind, key_id="k1"
        )
    # A row claiming another tenant or key id gets its own fields' AAD, like open_envelope.
    assert opener.aad(seq=1, kind="x", tenant="other", key_id="k2") == aad(
        tenant="other", session_id=sid, seq=1, kind="x", key_id="k2"
    )


def test_session_opener_opens_what_the_sealer_sealed() -> None:
    sid = uuid.uuid4()
    key = crypto.new_data_key()
    sealer = SessionSealer(crypto.Sealer(key), tenant="t", session_id=sid, key_id="k")
    env = sealer.seal(seq=5, kind="gap", at=T0, plaintext=b"hello", prev_hash=chain.GENESIS)
    opener = SessionOpener(crypto.Sealer(key), tenant="t", session_id=sid, key_id="k")
    assert opener.open(seq=5, kind="gap", nonce=env.nonce, ciphertext=env.ciphertext) == b"hello"
    for kw in ({"seq": 6, "kind": "gap"}, {"seq": 5, "kind": "notice"}):
        with pytest.raises(IntegrityError):
            opener.open(nonce=env.nonce, ciphertext=env.ciphertext, **kw)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        opener.open(seq=5, kind="gap", nonce=env.nonce, ciphertext=env.ciphertext, tenant="u")


# --- read_verified ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Session:
    id: uuid.UUID
    tenant: str
    event_count: int | None
    head_hash: bytes | None


def _sealed(n: int = 8) -> tuple[crypto.Sealer, uuid.UUID, list[Envelope]]:
    sid = uuid.uuid4()
    sealer = crypto.Sealer(crypto.new_data_key())
    s = SessionSealer(sealer, tenant="acme", session_id=sid, key_id="k1")
    envs: list[Envelope] = []
    prev = chain.GENESIS
    for i in range(n):
        rec = r.UserUtterance(at=T0 + timedelta(seconds=i), text=f"t{i}\ud800", source="stt")
        env = s.seal(seq=i, kind=rec.kind, at=rec.at, plaintext=records.encode(rec), prev_hash=prev)
        envs.append(env)
        prev = env.hash
    return sealer, sid, envs


def _tuple(e: Envelope) -> tuple[Any, ...]:
    return (e.seq, e.tenant, e.kind, e.at, e.key_id, e.nonce, e.ciphertext, e.prev_hash, e.hash)


def _session(sid: uuid.UUID, envs: list[Envelope], count: int | None = None) -> _Session:
    n = len(envs) if count is None else count
    return _Session(sid, "acme", n, envs[n - 1].hash if n else None)


def _check(
    sealer: crypto.Sealer, session: _Session, envs: list[Envelope]
) -> chain_verifier.VerifyResult:
    opened, result = read_verified(sealer, session, [_tuple(e) for e in envs])
    exp = session.event_count or None
    want = chain_verifier.verify(
        envs,
        expected_count=exp,
        expected_head=session.head_hash if exp else None,
    )
    assert result == want
    assert opened == list(open_records(sealer, envs))
    return result


def test_read_verified_matches_chain_verify_and_open_records() -> None:
    sealer, sid, envs = _sealed()
    session = _session(sid, envs)
    assert _check(sealer, session, envs).ok
    assert _check(sealer, _session(sid, [], 0), []).ok
    # the chain links are what changed, decryption still succeeds: reported, not raised
    bad_prev = [*envs[:3], replace(envs[3], prev_hash=bytes(32)), *envs[4:]]
    res = _check(sealer, session, bad_prev)
    assert (res.ok, res.first_bad_seq, res.reason) == (False, 3, "prev_hash mismatch")
    bad_hash = [*envs[:5], replace(envs[5], hash=bytes(32)), *envs[6:]]
    assert _check(sealer, session, bad_hash).first_bad_seq == 5
    res = _check(sealer, session, envs[:-1])  # last record deleted
    assert not res.ok and res.reason is not None and "truncated" in res.reason
    res = _check(sealer, session, [*envs[:2], *envs[3:]])  # a middle record deleted
    assert (res.ok, res.first_bad_seq) == (False, 2)
    res = _check(sealer, _Session(sid, "acme", len(envs), bytes(32)), envs)
    assert (res.ok, res.reason) == (False, "head hash mismatch at checkpoint")
    res = _check(sealer, _session(sid, envs, 4), envs)  # appended after the checkpoint: fine
    assert res.ok and res.events == len(envs)


def test_read_verified_fails_closed_on_a_record_that_does_not_open() -> None:
    sealer, sid, envs = _sealed()
    tampered = [*envs[:4], replace(envs[4], ciphertext=envs[4].ciphertext[:-1] + b"\0")]
    with pytest.raises(RecordUnreadable) as exc:
        read_verified(sealer, _session(sid, envs), [_tuple(e) for e in tampered])
    assert exc.value.seq == 4
    moved = [*envs[:2], replace(envs[2], seq=3)]  # AAD binds seq
    with pytest.raises(RecordUnreadable):
        read_verified(sealer, _session(sid, envs), [_tuple(e) for e in moved])


def test_transcript_entries_fold_timings_once() -> None:
    def o(seq: int, rec: records.Record) -> OpenedRecord:
        return OpenedRecord(seq=seq, at=rec.at, kind=rec.kind, record=rec)

    opened = [
        o(0, r.UserUtterance(at=T0, text="hi", source="stt", item_id="u1")),
        o(1, r.TurnTiming(at=T0, item_id="u1", transcription_delay=0.2, source="stt_metrics")),
        o(2, r.TurnTiming(at=T0, role="user", end_of_utterance_delay=0.4, source="eou")),
        o(3, r.TurnTiming(at=T0, item_id="u1", transcription_delay=0.3, source="x")),
        o(4, r.AgentUtterance(at=T0, text="yo", item_id="a1")),
        o(5, r.ToolCall(at=T0, call_id="c", name="n", arguments="{")),
    ]
    entries = transcript_entries(opened)
    assert [e.kind for e in entries] == ["user", "agent", "tool_call"]
    assert entries[0].timing == Timing(transcription_delay=0.3, end_of_utterance_delay=0.4)
    assert entries[1].timing is None and entries[2].timing is None


# --- the API ---------------------------------------------------------------------------------


def _sql(url: str, *statements: str, params: tuple[object, ...] = ()) -> None:
    """Run ``statements`` in one transaction; ``params`` go to the ones with placeholders."""
    with psycopg.connect(db.libpq_url(url)) as conn:
        for statement in statements:
            conn.execute(statement, params if "%s" in statement else None)


def test_transcript_reports_chain_integrity(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    h = auth(make_token(engine, "auditor", tenant))
    path = f"/v1/sessions/{rec.session_id}/transcript"
    body = client.get(path, headers=h).json()
    assert body["integrity"] == {"ok": True, "first_bad_seq": None, "reason": None}
    # An altered link that still decrypts: the transcript is served, the break reported,
    # and /verify agrees.
    _sql(
        settings.database_url or "",
        "ALTER TABLE events DISABLE TRIGGER events_append_only",
        "UPDATE events SET prev_hash = %s WHERE session_id = %s AND seq = 2",
        "ALTER TABLE events ENABLE TRIGGER events_append_only",
        params=(bytes(32), rec.session_id),
    )
    res = client.get(path, headers=h)
    assert res.status_code == 200
    assert res.json()["integrity"] == {
        "ok": False,
        "first_bad_seq": 2,
        "reason": "prev_hash mismatch",
    }
    assert res.json()["entries"] == body["entries"]
    report = client.get(f"/v1/sessions/{rec.session_id}/verify", headers=h).json()
    assert (report["ok"], report["first_bad_seq"]) == (False, 2)


def test_transcript_deleted_last_record_is_reported(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    h = auth(make_token(engine, "auditor", tenant))
    _sql(
        settings.database_url or "",
        "SET LOCAL auditagent.allow_purge = 'on'",
        "DELETE FROM events WHERE session_id = %s"
        " AND seq = (SELECT max(seq) FROM events WHERE session_id = %s)",
        params=(rec.session_id, rec.session_id),
    )
    integrity = client.get(f"/v1/sessions/{rec.session_id}/transcript", headers=h).json()[
        "integrity"
    ]
    assert integrity["ok"] is False and "truncated" in integrity["reason"]
