"""Hash chain linking and verification; no database and no decryption key."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from auditagent.integrity import chain, chain_verifier, crypto, envelope
from auditagent.integrity.envelope import Envelope

SID = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab")
OTHER_SID = uuid.UUID("00000000-0000-4000-8000-000000000002")
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def make_chain(
    n: int = 5, *, session_id: uuid.UUID = SID, tenant: str = "acme", key: bytes | None = None
) -> list[Envelope]:
    sealer = crypto.Sealer(key or crypto.new_data_key())
    rows: list[Envelope] = []
    prev = chain.GENESIS
    for seq in range(n):
        env = envelope.seal_record(
            sealer,
            tenant=tenant,
            session_id=session_id,
            seq=seq,
            kind="user_transcript" if seq % 2 else "agent_transcript",
            key_id="dk:1",
            at=T0 + timedelta(seconds=seq, microseconds=seq),
            plaintext=f'{{"text":"utterance {seq}"}}'.encode(),
            prev_hash=prev,
        )
        rows.append(env)
        prev = env.hash
    return rows


def test_link_matches_the_documented_format() -> None:
    """Recompute one link by hand from docs/architecture.md, independently of chain.link."""
    prev = bytes(range(32))
    nonce = bytes(12)
    ciphertext = b"\x01\x02\x03"
    at = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)

    def lp(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    at_us = 1735787045678901
    assert int(at.timestamp()) * 1_000_000 + at.microsecond == at_us
    expected = hashlib.sha256(
        b"auditagent/chain/v1\0"
        + prev
        + lp(SID.bytes)
        + lp(struct.pack(">Q", 9))
        + lp(b"user_transcript")
        + lp(b"dk:1")
        + lp(b"acme")
        + lp(struct.pack(">q", at_us))
        + lp(nonce)
        + lp(ciphertext)
    ).digest()
    got = chain.link(
        prev_hash=prev,
        session_id=SID,
        seq=9,
        kind="user_transcript",
        key_id="dk:1",
        tenant="acme",
        at=at,
        nonce=nonce,
        ciphertext=ciphertext,
    )
    assert got == expected
    # Same instant in another zone: same hash.
    cet = at.astimezone(timezone(timedelta(hours=1)))
    assert got == chain.link(
        prev_hash=prev,
        session_id=SID,
        seq=9,
        kind="user_transcript",
        key_id="dk:1",
        tenant="acme",
        at=cet,
        nonce=nonce,
        ciphertext=ciphertext,
    )


def test_link_refuses_naive_time_and_bad_prev_hash() -> None:
    def attempt(prev_hash: bytes, at: datetime) -> bytes:
        return chain.link(
            prev_hash=prev_hash,
            session_id=SID,
            seq=0,
            kind="k",
            key_id="d",
            tenant="t",
            at=at,
            nonce=b"",
            ciphertext=b"",
        )

    with pytest.raises(ValueError):
        attempt(chain.GENESIS, datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        attempt(b"short", T0)


def test_good_chain_verifies() -> None:
    rows = make_chain(6)
    result = chain_verifier.verify(rows)
    assert result == chain_verifier.VerifyResult(
        ok=True, events=6, first_bad_seq=None, reason=None, head_hash=rows[-1].hash
    )
    assert rows[0].prev_hash == chain.GENESIS
    assert chain_verifier.verify(rows, expected_count=6, expected_head=rows[-1].hash).ok
    assert chain_verifier.verify(iter(rows)).ok  # a one-pass iterator is enough


def test_empty_chain() -> None:
    assert chain_verifier.verify([]) == chain_verifier.VerifyResult(
        ok=True, events=0, first_bad_seq=None, reason=None, head_hash=chain.GENESIS
    )
    assert chain_verifier.verify([], expected_count=0, expected_head=chain.GENESIS).ok
    bad = chain_verifier.verify([], expected_count=3)
    assert not bad.ok and bad.reason == "chain truncated: 0 events, expected 3"


def test_verify_needs_no_key_after_shredding() -> None:
    """Verification only reads sealed bytes: a chain still verifies once its key is gone."""
    rows = make_chain(3, key=crypto.new_data_key())
    assert chain_verifier.verify(rows).ok


def test_edited_record_is_reported_at_its_seq() -> None:
    rows = make_chain(5)
    tampered = bytearray(rows[2].ciphertext)
    tampered[0] ^= 1
    rows[2] = dataclasses.replace(rows[2], ciphertext=bytes(tampered))
    result = chain_verifier.verify(rows)
    assert not result.ok
    assert result.first_bad_seq == 2
    assert result.reason == "hash mismatch (record altered)"
    assert result.events == 2
    assert result.head_hash == rows[1].hash


@pytest.mark.parametrize("field", ["kind", "tenant", "key_id", "at"])
def test_edited_metadata_is_detected(field: str) -> None:
    rows = make_chain(4)
    row = rows[1]
    rows[1] = {
        "kind": dataclasses.replace(row, kind=row.kind + "x"),
        "tenant": dataclasses.replace(row, tenant="globex"),
        "key_id": dataclasses.replace(row, key_id="dk:2"),
        "at": dataclasses.replace(row, at=row.at + timedelta(microseconds=1)),
    }[field]
    result = chain_verifier.verify(rows)
    assert not result.ok and result.first_bad_seq == 1


def test_rehashed_edit_breaks_the_next_link() -> None:
    """An attacker who recomputes the edited record's hash is caught by the next prev_hash."""
    rows = make_chain(4)
    edited = dataclasses.replace(rows[1], ciphertext=rows[1].ciphertext + b"x")
    new_hash = chain.link(
        prev_hash=edited.prev_hash,
        session_id=edited.session_id,
        seq=edited.seq,
        kind=edited.kind,
        key_id=edited.key_id,
        tenant=edited.tenant,
        at=edited.at,
        nonce=edited.nonce,
        ciphertext=edited.ciphertext,
    )
    rows[1] = dataclasses.replace(edited, hash=new_hash)
    result = chain_verifier.verify(rows)
    assert not result.ok
    assert result.first_bad_seq == 2
    assert result.reason == "prev_hash mismatch"


def test_deleted_record_is_a_gap() -> None:
    rows = make_chain(5)
    del rows[2]
    result = chain_verifier.verify(rows)
    assert not result.ok
    assert result.first_bad_seq == 2
    assert result.reason == "missing seq 2"


def test_deleted_first_record() -> None:
    result = chain_verifier.verify(make_chain(3)[1:])
    assert not result.ok and result.first_bad_seq == 0 and result.reason == "missing seq 0"


def test_reordered_records() -> None:
    rows = make_chain(5)
    rows[1], rows[2] = rows[2], rows[1]
    result = chain_verifier.verify(rows)
    assert not result.ok
    assert result.first_bad_seq == 1


def test_renumbered_records_after_deletion() -> None:
    """Deleting a record and renumbering the rest to hide the gap breaks the hashes."""
    rows = make_chain(5)
    del rows[2]
    rows = [dataclasses.replace(r, seq=i) for i, r in enumerate(rows)]
    result = chain_verifier.verify(rows)
    assert not result.ok
    assert result.first_bad_seq == 2


def test_duplicated_record() -> None:
    rows = make_chain(4)
    rows.insert(2, rows[1])
    result = chain_verifier.verify(rows)
    assert not result.ok
    assert result.first_bad_seq == 1
    assert result.reason is not None and "out of order or duplicated" in result.reason


def test_record_swapped_from_another_session() -> None:
    rows = make_chain(4)
    foreign = make_chain(4, session_id=OTHER_SID)
    rows[2] = foreign[2]
    result = chain_verifier.verify(rows)
    assert not result.ok and result.first_bad_seq == 2
    # Relabelled as this session: the hash no longer matches.
    rows[2] = dataclasses.replace(foreign[2], session_id=SID)
    result = chain_verifier.verify(rows)
    assert not result.ok and result.first_bad_seq == 2


def test_whole_chain_from_another_session_cannot_pass_as_this_one() -> None:
    foreign = make_chain(3, session_id=OTHER_SID)
    relabelled = [dataclasses.replace(r, session_id=SID) for r in foreign]
    result = chain_verifier.verify(relabelled)
    assert not result.ok and result.first_bad_seq == 0
    assert result.reason == "hash mismatch (record altered)"


def test_truncated_chain_with_expected_count() -> None:
    rows = make_chain(6)
    assert chain_verifier.verify(rows[:4]).ok  # truncation alone is invisible without a checkpoint
    result = chain_verifier.verify(rows[:4], expected_count=6)
    assert not result.ok
    assert result.reason == "chain truncated: 4 events, expected 6"
    assert result.first_bad_seq == 4
    assert result.events == 4


def test_expected_head() -> None:
    rows = make_chain(6)
    result = chain_verifier.verify(rows[:5], expected_head=rows[-1].hash)
    assert not result.ok and result.reason is not None and "head" in result.reason
    # A checkpoint of a live session: later appends are fine, the prefix must match.
    assert chain_verifier.verify(rows, expected_count=4, expected_head=rows[3].hash).ok
    result = chain_verifier.verify(rows, expected_count=4, expected_head=rows[4].hash)
    assert not result.ok and result.reason == "head hash mismatch at checkpoint"


def test_malformed_row_is_reported_not_raised() -> None:
    rows = make_chain(3)
    rows[1] = dataclasses.replace(rows[1], at=datetime(2025, 1, 1))
    result = chain_verifier.verify(rows)
    assert not result.ok and result.first_bad_seq == 1
    assert result.reason is not None and result.reason.startswith("malformed record")


def test_rows_with_memoryview_columns() -> None:
    """Database drivers may hand bytea back as memoryview."""

    @dataclasses.dataclass
    class Row:
        session_id: uuid.UUID
        seq: int
        tenant: str
        kind: str
        at: datetime
        key_id: str
        nonce: memoryview
        ciphertext: memoryview
        prev_hash: memoryview
        hash: memoryview

    rows = [
        Row(
            session_id=r.session_id,
            seq=r.seq,
            tenant=r.tenant,
            kind=r.kind,
            at=r.at,
            key_id=r.key_id,
            nonce=memoryview(r.nonce),
            ciphertext=memoryview(r.ciphertext),
            prev_hash=memoryview(r.prev_hash),
            hash=memoryview(r.hash),
        )
        for r in make_chain(3)
    ]
    assert chain_verifier.verify(rows).ok  # type: ignore[arg-type]


def test_session_sealer_matches_the_reference_encoding() -> None:
    import uuid as _uuid
    from datetime import datetime as _dt
    from datetime import timezone as _tz

    from auditagent.integrity import crypto as _crypto
    from auditagent.integrity import envelope as _env

    key = _crypto.new_data_key()
    sid = _uuid.uuid4()
    fast = _env.SessionSealer(_crypto.Sealer(key), tenant="acme", session_id=sid, key_id="k1")
    prev = bytes(32)
    for seq, kind in enumerate(["opened", "user_utterance", "tool_call"]):
        at = _dt.now(_tz.utc)
        e = fast.seal(seq=seq, kind=kind, at=at, plaintext=b"p%d" % seq, prev_hash=prev)
        ref_aad = _env.aad(tenant="acme", session_id=sid, seq=seq, kind=kind, key_id="k1")
        assert _crypto.open(key, e.nonce, e.ciphertext, ref_aad) == b"p%d" % seq
        assert e.hash == chain.link(
            prev_hash=prev,
            session_id=sid,
            seq=seq,
            kind=kind,
            key_id="k1",
            tenant="acme",
            at=at,
            nonce=e.nonce,
            ciphertext=e.ciphertext,
        )
        prev = e.hash
