"""The one ChainVerifier: its field path (``add``, what the read path and reader use) and its
row path (``add_row``, what ``chain.verify`` uses) agree on every finding, and the session
row's commitments and a signed checkpoint are held to alike."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from auditagent.integrity import chain, chain_verifier, crypto
from auditagent.integrity.envelope import Envelope, SessionSealer

SID = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def make_chain(n: int) -> list[Envelope]:
    sealer = SessionSealer(
        crypto.Sealer(crypto.new_data_key()), tenant="acme", session_id=SID, key_id="dk:1"
    )
    rows, prev = [], chain.GENESIS
    for seq in range(n):
        env = sealer.seal(
            seq=seq,
            kind=("opened", "user_utterance", "agent_utterance")[min(seq, 2)],
            at=T0 + timedelta(seconds=seq),
            plaintext=b"zebrafinch %d" % seq,
            prev_hash=prev,
        )
        rows.append(env)
        prev = env.hash
    return rows


def as_tuple(e: Envelope) -> tuple[Any, ...]:
    return (e.seq, e.tenant, e.kind, e.at, e.key_id, e.nonce, e.ciphertext, e.prev_hash, e.hash)


def by_fields(rows: list[Envelope], **kw: Any) -> chain_verifier.VerifyResult:
    v = chain_verifier.ChainVerifier(SID, **kw)
    for e in rows:
        if not v.add(*as_tuple(e)):
            break
    return v.result()


@functools.cache
def _cases() -> dict[str, list[Envelope]]:
    good = make_chain(6)
    other = make_chain(2)
    return {
        "good": good,
        "edited": [*good[:2], dataclasses.replace(good[2], ciphertext=b"x" * 20), *good[3:]],
        "gap": [*good[:3], *good[4:]],
        "duplicate": [*good[:3], good[2], *good[3:]],
        "relinked": [*good[:2], dataclasses.replace(good[2], prev_hash=b"\x00" * 32)],
        "other tenant": [*good[:1], dataclasses.replace(good[1], tenant="evil")],
        "naive time": [*good[:1], dataclasses.replace(good[1], at=datetime(2026, 1, 1))],
        "truncated": good[:4],
        "foreign": other,
    }


@pytest.mark.parametrize("case", list(_cases()))
@pytest.mark.parametrize("expected", [None, 6, 3])
def test_field_and_row_paths_agree(case: str, expected: int | None) -> None:
    rows = _cases()[case]
    good = _cases()["good"]
    head = good[expected - 1].hash if expected else None
    kw: dict[str, Any] = {"expected_count": expected, "expected_head": head}
    row_result = chain_verifier.verify(rows, **kw)
    if case != "foreign":
        assert by_fields(rows, **kw) == row_result
    if case == "good":
        assert row_result.ok and row_result.events == 6 and row_result.head_hash == good[-1].hash
    else:
        # a shorter chain is only caught by a commitment to more records
        shorter_ok = (case == "foreign" and expected is None) or (
            case == "truncated" and expected != 6
        )
        assert row_result.ok == shorter_ok, row_result


def test_row_path_refuses_a_record_of_another_session() -> None:
    rows = make_chain(3)
    moved = dataclasses.replace(rows[1], session_id=uuid.uuid4())
    res = chain_verifier.verify([rows[0], moved, rows[2]])
    assert (res.first_bad_seq, res.reason) == (1, "record belongs to another session")


def test_expected_head_alone_is_the_final_head() -> None:
    rows = make_chain(4)
    assert chain_verifier.verify(rows, expected_head=rows[-1].hash).ok
    res = chain_verifier.verify(rows[:3], expected_head=rows[-1].hash)
    assert res.reason == "head hash mismatch (chain truncated or rewritten)"


def _session(rows: list[Envelope], status: str = "closed") -> SimpleNamespace:
    return SimpleNamespace(
        id=SID,
        event_count=len(rows),
        head_hash=rows[-1].hash if rows else None,
        status=status,
    )


def test_for_session_holds_to_the_row_and_the_signed_checkpoint() -> None:
    rows = make_chain(5)
    session = _session(rows)

    def run(
        checkpoint: tuple[int, bytes] | None, feed: list[Envelope]
    ) -> chain_verifier.VerifyResult:
        v = chain_verifier.ChainVerifier.for_session(session, checkpoint=checkpoint)
        for e in feed:
            v.add(*as_tuple(e))
        return v.finish(status=session.status)

    assert run((3, rows[2].hash), rows).ok
    res = run((3, b"\x09" * 32), rows)
    assert res.reason == "head hash differs from its signed checkpoint (chain rewritten)"
    # the row was rewritten to match a shorter chain; the signed checkpoint still catches it
    session.event_count, session.head_hash = 3, rows[2].hash
    res = run((5, rows[4].hash), rows[:3])
    assert res.reason == "chain truncated: 3 events, its signed checkpoint has 5"


def test_an_open_or_closed_session_without_records_never_verifies() -> None:
    empty = SimpleNamespace(id=SID, event_count=0, head_hash=None, status="closed")
    res = chain_verifier.ChainVerifier.for_session(empty).finish(status="closed")
    assert not res.ok and res.first_bad_seq == 0
    assert chain_verifier.ChainVerifier.for_session(empty).finish(status="purged").ok


def test_link_is_link_fast() -> None:
    e = make_chain(2)[1]
    assert e.hash == chain.link(
        prev_hash=e.prev_hash,
        session_id=SID,
        seq=1,
        kind=e.kind,
        key_id="dk:1",
        tenant="acme",
        at=e.at,
        nonce=e.nonce,
        ciphertext=e.ciphertext,
    )
