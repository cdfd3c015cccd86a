"""One encoding of a record's associated data: ``envelope.aad``, the sealer and the opener all
build it with ``encoding.record_aad(encoding.aad_head(...), ...)``; the bytes are pinned."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from auditagent.errors import IntegrityError
from auditagent.integrity import crypto, encoding
from auditagent.integrity.envelope import SessionOpener, SessionSealer, aad, open_envelope

SID = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab")


def test_aad_bytes_are_pinned() -> None:
    got = aad(tenant="acme", session_id=SID, seq=7, kind="user_utterance", key_id="dk:1")
    want = (
        b"auditagent/event/v1\0"
        + b"\0\0\0\x04acme"
        + b"\0\0\0\x10"
        + SID.bytes
        + b"\0\0\0\x08"
        + (7).to_bytes(8, "big")
        + b"\0\0\0\x0euser_utterance"
        + b"\0\0\0\x04dk:1"
    )
    assert got == want


def test_sealer_opener_and_aad_agree() -> None:
    key = crypto.new_data_key()
    sealer = SessionSealer(crypto.Sealer(key), tenant="acme", session_id=SID, key_id="dk:1")
    opener = SessionOpener(crypto.Sealer(key), tenant="acme", session_id=SID, key_id="dk:1")
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    env = sealer.seal(seq=3, kind="tool_call", at=at, plaintext=b"zebrafinch", prev_hash=b"\0" * 32)
    ref = aad(tenant="acme", session_id=SID, seq=3, kind="tool_call", key_id="dk:1")
    assert opener.aad(seq=3, kind="tool_call") == ref
    assert crypto.open(key, env.nonce, env.ciphertext, ref) == b"zebrafinch"
    assert open_envelope(crypto.Sealer(key), env) == b"zebrafinch"
    # a row claiming another tenant or key id gets its own fields' AAD, and fails to open
    other = opener.aad(seq=3, kind="tool_call", tenant="evil")
    assert other == aad(tenant="evil", session_id=SID, seq=3, kind="tool_call", key_id="dk:1")
    with pytest.raises(IntegrityError):
        opener.open(
            seq=3, kind="tool_call", nonce=env.nonce, ciphertext=env.ciphertext, tenant="evil"
        )
    with pytest.raises(IntegrityError):
        opener.open(seq=4, kind="tool_call", nonce=env.nonce, ciphertext=env.ciphertext)


def test_labels_are_distinct() -> None:
    labels = [getattr(encoding, n) for n in encoding.__all__ if n.endswith("_LABEL")]
    assert len(labels) >= 10 and len(set(labels)) == len(labels)
    assert all(label.startswith(b"auditagent/") and label.endswith(b"\0") for label in labels)


def test_read_lp_reads_back_what_lp_wrote_and_refuses_an_overrun() -> None:
    lp = encoding.lp
    data = b"\x07" + lp(b"alpha") + lp(b"") + lp(b"omega") + b"tail"
    fields, pos = encoding.read_lp(memoryview(data), 1, 3)
    assert fields == [b"alpha", b"", b"omega"] and data[pos:] == b"tail"
    with pytest.raises(ValueError, match="overruns"):
        encoding.read_lp(memoryview(lp(b"short")[:-1]), 0, 1)
