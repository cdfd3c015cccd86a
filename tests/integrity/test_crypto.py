"""AES-256-GCM sealing, associated-data binding and Ed25519; no database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from auditagent.errors import IntegrityError
from auditagent.integrity import chain, chain_verifier, crypto, envelope

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "vectors" / "aesgcm.json").read_text()
)["vectors"]

SID = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab")
AT = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def _h(v: dict[str, Any], field: str) -> bytes:
    return bytes.fromhex(v[field])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"][:40] for v in VECTORS])
def test_known_answer_vectors(vector: dict[str, Any]) -> None:
    key, nonce, aad, plaintext = (_h(vector, f) for f in ("key", "nonce", "aad", "plaintext"))
    expected = _h(vector, "ciphertext")
    assert crypto.seal(key, plaintext, aad, nonce=nonce) == (nonce, expected)
    assert crypto.Sealer(key).seal(plaintext, aad, nonce=nonce) == (nonce, expected)
    assert crypto.open(key, nonce, expected, aad) == plaintext
    assert crypto.Sealer(key).open(nonce, expected, aad) == plaintext


def test_vectors_include_the_gcm_specification_cases() -> None:
    names = " ".join(v["name"] for v in VECTORS)
    for case in ("test case 14", "test case 15", "test case 16"):
        assert case in names
    assert len(VECTORS) >= 3


def test_vectors_pin_the_envelope_aad_format() -> None:
    record = next(v for v in VECTORS if v["name"].startswith("auditagent record"))
    assert _h(record, "aad") == envelope.aad(
        tenant="acme", session_id=SID, seq=7, kind="user_transcript", key_id="dk:42"
    )
    wrap = next(v for v in VECTORS if v["name"].startswith("auditagent key wrap"))
    assert _h(wrap, "aad") == b"auditagent/dek/v1\0" + envelope.dek_context(
        tenant="acme", session_id=SID, key_id="dk:42"
    )


def test_random_keys_and_nonces() -> None:
    assert len(crypto.new_data_key()) == 32
    assert len(crypto.new_nonce()) == 12
    assert crypto.new_data_key() != crypto.new_data_key()
    sealer = crypto.Sealer(crypto.new_data_key())
    nonces = {sealer.seal(b"x", b"a")[0] for _ in range(100)}
    assert len(nonces) == 100


def test_roundtrip_and_ciphertext_hides_plaintext() -> None:
    key = crypto.new_data_key()
    nonce, ct = crypto.seal(key, b"secret transcript", b"aad")
    assert b"secret" not in ct
    assert len(ct) == len(b"secret transcript") + 16
    assert crypto.open(key, nonce, ct, b"aad") == b"secret transcript"


def test_wrong_key_fails() -> None:
    nonce, ct = crypto.seal(crypto.new_data_key(), b"hello", b"aad")
    with pytest.raises(IntegrityError):
        crypto.open(crypto.new_data_key(), nonce, ct, b"aad")


def test_wrong_aad_fails() -> None:
    key = crypto.new_data_key()
    nonce, ct = crypto.seal(key, b"hello", b"aad")
    with pytest.raises(IntegrityError):
        crypto.open(key, nonce, ct, b"aae")
    with pytest.raises(IntegrityError):
        crypto.open(key, nonce, ct, b"")


@pytest.mark.parametrize("cut", [1, 16, 17])
def test_truncated_ciphertext_fails(cut: int) -> None:
    key = crypto.new_data_key()
    nonce, ct = crypto.seal(key, b"hello world", b"aad")
    with pytest.raises(IntegrityError):
        crypto.open(key, nonce, ct[:-cut], b"aad")


def test_every_bit_flip_fails() -> None:
    key = crypto.new_data_key()
    sealer = crypto.Sealer(key)
    nonce, ct = sealer.seal(b"hello", b"aad")
    for i in range(len(ct) * 8):
        flipped = bytearray(ct)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(IntegrityError):
            sealer.open(nonce, bytes(flipped), b"aad")
    bad_nonce = bytes([nonce[0] ^ 1]) + nonce[1:]
    with pytest.raises(IntegrityError):
        sealer.open(bad_nonce, ct, b"aad")


@pytest.mark.parametrize("nonce_len", [0, 8, 11, 13, 16])
def test_bad_nonce_length_is_integrity_error(nonce_len: int) -> None:
    key = crypto.new_data_key()
    _, ct = crypto.seal(key, b"hello", b"aad")
    with pytest.raises(IntegrityError):
        crypto.open(key, bytes(nonce_len), ct, b"aad")


@pytest.mark.parametrize("key", [b"", bytes(16), bytes(31), bytes(33)])
def test_bad_key_length_on_open_is_integrity_error(key: bytes) -> None:
    nonce, ct = crypto.seal(crypto.new_data_key(), b"hello", b"aad")
    with pytest.raises(IntegrityError):
        crypto.open(key, nonce, ct, b"aad")


def test_integrity_error_is_opaque() -> None:
    key = crypto.new_data_key()
    nonce, ct = crypto.seal(key, b"hello", b"aad")
    messages = set()
    attempts: list[Callable[[], bytes]] = [
        lambda: crypto.open(crypto.new_data_key(), nonce, ct, b"aad"),
        lambda: crypto.open(key, nonce, ct, b"bad"),
        lambda: crypto.open(key, nonce, ct[:-1], b"aad"),
        lambda: crypto.open(key, nonce[:8], ct, b"aad"),
    ]
    for attempt in attempts:
        with pytest.raises(IntegrityError) as info:
            attempt()
        assert info.value.__cause__ is None
        messages.add(str(info.value))
    assert messages == {"integrity check failed"}


def test_seal_rejects_wrong_sized_inputs() -> None:
    with pytest.raises(ValueError):
        crypto.Sealer(bytes(16))
    with pytest.raises(ValueError):
        crypto.Sealer(bytes(32)).seal(b"x", b"", nonce=bytes(8))


# --- associated data binds a ciphertext to its row ----------------------------------------

BASE: dict[str, Any] = {
    "tenant": "acme",
    "session_id": SID,
    "seq": 3,
    "kind": "user_transcript",
    "key_id": "dk:1",
}


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 4},
        {"session_id": uuid.UUID("00000000-0000-4000-8000-000000000002")},
        {"tenant": "globex"},
        {"kind": "agent_transcript"},
        {"key_id": "dk:2"},
    ],
    ids=["seq", "session", "tenant", "kind", "key_id"],
)
def test_ciphertext_swapped_to_another_row_fails(change: dict[str, Any]) -> None:
    sealer = crypto.Sealer(crypto.new_data_key())
    original = envelope.seal_record(
        sealer, **BASE, at=AT, plaintext=b'{"text":"hi"}', prev_hash=chain.GENESIS
    )
    other = envelope.seal_record(
        sealer, **{**BASE, **change}, at=AT, plaintext=b'{"text":"bye"}', prev_hash=chain.GENESIS
    )
    assert envelope.open_envelope(sealer, original) == b'{"text":"hi"}'
    assert envelope.open_envelope(sealer, other) == b'{"text":"bye"}'
    # Move original's sealed bytes into the other row.
    moved = envelope.Envelope(
        session_id=other.session_id,
        seq=other.seq,
        tenant=other.tenant,
        kind=other.kind,
        at=other.at,
        key_id=other.key_id,
        nonce=original.nonce,
        ciphertext=original.ciphertext,
        prev_hash=other.prev_hash,
        hash=other.hash,
    )
    with pytest.raises(IntegrityError):
        envelope.open_envelope(sealer, moved)


def test_aad_is_unambiguous() -> None:
    a = envelope.aad(tenant="ab", session_id=SID, seq=1, kind="c", key_id="k")
    b = envelope.aad(tenant="a", session_id=SID, seq=1, kind="bc", key_id="k")
    assert a != b
    assert a.startswith(b"auditagent/event/v1\0")
    c1 = envelope.dek_context(tenant="acme", session_id=SID, key_id="k")
    c2 = envelope.dek_context(tenant="acmek", session_id=SID, key_id="")
    assert c1 != c2


def test_envelope_bytes_roundtrip() -> None:
    sealer = crypto.Sealer(crypto.new_data_key())
    env = envelope.seal_record(
        sealer, **BASE, at=AT, plaintext=b"payload", prev_hash=bytes(range(32))
    )
    data = env.to_bytes()
    assert b"payload" not in data
    back = envelope.Envelope.from_bytes(data)
    assert back == env
    assert back.at.tzinfo is not None
    assert envelope.open_envelope(sealer, back) == b"payload"
    assert chain_verifier.verify([back]).ok is False  # prev_hash is not GENESIS: not a first record
    for bad in (data[:-1], data + b"x", b"XXXX" + data[4:], data[:10], b""):
        with pytest.raises(ValueError):
            envelope.Envelope.from_bytes(bad)


# --- Ed25519 ------------------------------------------------------------------------------


def test_sign_and_verify() -> None:
    private = crypto.signing_key_generate()
    assert len(private) == 32
    public = crypto.signing_public_key(private)
    assert len(public) == 32
    signature = crypto.sign(private, b"checkpoint")
    assert len(signature) == 64
    assert crypto.verify_signature(public, b"checkpoint", signature)
    assert crypto.signing_public_key(private) == public


def test_forged_or_malformed_signatures_are_false() -> None:
    private = crypto.signing_key_generate()
    public = crypto.signing_public_key(private)
    signature = crypto.sign(private, b"checkpoint")
    forged = bytes([signature[0] ^ 1]) + signature[1:]
    other_key = crypto.signing_public_key(crypto.signing_key_generate())
    assert not crypto.verify_signature(public, b"checkpoint", forged)
    assert not crypto.verify_signature(public, b"checkpoinT", signature)
    assert not crypto.verify_signature(other_key, b"checkpoint", signature)
    assert not crypto.verify_signature(public, b"checkpoint", signature[:63])
    assert not crypto.verify_signature(public, b"checkpoint", b"")
    assert not crypto.verify_signature(b"short", b"checkpoint", signature)
    assert not crypto.verify_signature(public, b"checkpoint", bytes(64))
    assert not crypto.verify_signature(public, b"checkpoint", "not bytes")  # type: ignore[arg-type]
