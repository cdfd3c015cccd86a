"""reading.decrypt without a database: ``read_verified`` opens every record and recomputes the
chain in one pass, agreeing with ``open_records`` + ``chain.verify``; it fails closed on a
record that does not open, and reports (without refusing) a chain that does not verify."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from auditagent import records as r
from auditagent.integrity import chain_verifier, crypto
from auditagent.integrity.envelope import SessionSealer, open_envelope
from auditagent.reading.decrypt import (
    KeyShredded,
    RecordUnreadable,
    open_records,
    read_verified,
    session_sealer,
)
from tests.support.sealed import T0, Sealed, seal


def test_read_verified_matches_open_records_and_verify(sealed: Sealed) -> None:
    opened, result = read_verified(crypto.Sealer(sealed.key), sealed.session, sealed.tuples())
    assert [o.record for o in opened] == sealed.records
    assert [(o.seq, o.kind, o.at) for o in opened] == [
        (e.seq, e.kind, e.at) for e in sealed.envelopes
    ]
    assert list(open_records(crypto.Sealer(sealed.key), sealed.envelopes)) == opened
    assert result == chain_verifier.verify(
        sealed.envelopes,
        expected_count=sealed.session.event_count,
        expected_head=sealed.session.head_hash,
    )
    assert result.ok and result.events == len(sealed.records)


def test_a_wrong_key_or_moved_record_fails_closed(sealed: Sealed) -> None:
    with pytest.raises(RecordUnreadable) as exc:
        read_verified(crypto.Sealer(crypto.new_data_key()), sealed.session, sealed.tuples())
    assert exc.value.seq == 0
    rows = sealed.tuples()
    rows[3] = (4, *rows[3][1:])  # record 3's ciphertext under seq 4's associated data
    with pytest.raises(RecordUnreadable) as exc:
        read_verified(crypto.Sealer(sealed.key), sealed.session, rows)
    assert exc.value.seq == 4


def test_an_altered_hash_is_reported_and_the_text_still_reads(sealed: Sealed) -> None:
    rows = sealed.tuples()
    rows[2] = (*rows[2][:8], b"\x00" * 32)
    opened, result = read_verified(crypto.Sealer(sealed.key), sealed.session, rows)
    assert len(opened) == len(rows)
    assert (result.ok, result.first_bad_seq, result.reason) == (
        False,
        2,
        "hash mismatch (record altered)",
    )


def test_a_deleted_last_record_is_caught_by_the_session_row(sealed: Sealed) -> None:
    _, result = read_verified(crypto.Sealer(sealed.key), sealed.session, sealed.tuples()[:-1])
    assert not result.ok and result.reason == "chain truncated: 7 events, expected 8"


def test_the_signed_checkpoint_is_held_to(sealed: Sealed) -> None:
    sealer = crypto.Sealer(sealed.key)
    good = (3, sealed.envelopes[2].hash)
    assert read_verified(sealer, sealed.session, sealed.tuples(), checkpoint=good)[1].ok
    _, res = read_verified(sealer, sealed.session, sealed.tuples(), checkpoint=(3, b"\1" * 32))
    assert res.reason == "head hash differs from its signed checkpoint (chain rewritten)"
    _, res = read_verified(sealer, sealed.session, sealed.tuples(), problem="note is forged")
    assert res.reason == "note is forged"


def test_a_record_of_another_kind_than_its_row_is_refused(sealed: Sealed) -> None:
    env = sealed.envelopes[1]
    # re-seal record 1's plaintext under an AAD that says "agent_utterance"
    sealer = crypto.Sealer(sealed.key)
    plain = open_envelope(sealer, env)
    forged = SessionSealer(sealer, tenant="acme", session_id=env.session_id, key_id="dk:1").seal(
        seq=1, kind="agent_utterance", at=env.at, plaintext=plain, prev_hash=env.prev_hash
    )
    envs = list(sealed.envelopes)
    envs[1] = forged
    with pytest.raises(RecordUnreadable, match="kind does not match"):
        list(open_records(sealer, envs))


def test_a_shredded_key_says_so(sealed: Sealed) -> None:
    row = SimpleNamespace(wrapped=None, shredded_at=None)
    with pytest.raises(KeyShredded):
        session_sealer(None, row, sealed.session)  # type: ignore[arg-type]
    with pytest.raises(KeyShredded):
        session_sealer(None, None, sealed.session)  # type: ignore[arg-type]


def test_read_verified_takes_the_fallback_decoder_and_still_refuses_what_nothing_decodes(
    sealed: Sealed,
) -> None:
    # a lone surrogate is only written by the encoder's stdlib fallback, which pydantic's own
    # parser refuses: read_verified must still read it, exactly as records.decode does
    recs = [
        *sealed.records[:1],
        r.UserUtterance(at=T0, text="lone \ud800 quokka", source="stt", item_id="u\udfff"),
        *sealed.records[2:],
    ]
    hostile = seal(recs)
    opened, result = read_verified(crypto.Sealer(hostile.key), hostile.session, hostile.tuples())
    assert [o.record for o in opened] == recs and result.ok
    # the kind check holds on the fast path too
    sealer = crypto.Sealer(sealed.key)
    env = sealed.envelopes[1]
    forged = SessionSealer(sealer, tenant="acme", session_id=env.session_id, key_id="dk:1").seal(
        seq=1,
        kind="agent_utterance",
        at=env.at,
        plaintext=open_envelope(sealer, env),
        prev_hash=env.prev_hash,
    )
    rows = sealed.tuples()
    rows[1] = (
        1,
        "acme",
        "agent_utterance",
        env.at,
        "dk:1",
        forged.nonce,
        forged.ciphertext,
        forged.prev_hash,
        forged.hash,
    )
    with pytest.raises(RecordUnreadable, match="kind does not match"):
        read_verified(sealer, sealed.session, rows)
    # and a plaintext no decoder accepts is refused, not dropped
    garbage = SessionSealer(sealer, tenant="acme", session_id=env.session_id, key_id="dk:1").seal(
        seq=1, kind=env.kind, at=env.at, plaintext=b'{"kind": "pangolin"}', prev_hash=env.prev_hash
    )
    rows = sealed.tuples()
    rows[1] = (
        1,
        "acme",
        env.kind,
        env.at,
        "dk:1",
        garbage.nonce,
        garbage.ciphertext,
        garbage.prev_hash,
        garbage.hash,
    )
    with pytest.raises(RecordUnreadable, match="unknown record format"):
        read_verified(sealer, sealed.session, rows)
