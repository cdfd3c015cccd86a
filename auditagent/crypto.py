"""AES-256-GCM sealing and Ed25519 signatures.

This is the only module that imports ``cryptography.hazmat``; everything else goes through the
functions here so the primitives, key sizes and nonce sizes are decided in one place.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auditagent.errors import IntegrityError

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "Sealer",
    "new_data_key",
    "new_nonce",
    "open",
    "seal",
    "sign",
    "signing_key_generate",
    "signing_public_key",
    "verify_signature",
]

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16

_urandom = os.urandom


def new_data_key() -> bytes:
    """A fresh AES-256 key."""
    return _urandom(KEY_SIZE)


def new_nonce() -> bytes:
    """A fresh random 96-bit GCM nonce."""
    return _urandom(NONCE_SIZE)


class Sealer:
    """AES-256-GCM under one key.

    Build one per data key and reuse it: constructing the AESGCM object expands the key
    schedule, which should happen once per session, not once per record.
    """

    __slots__ = ("_decrypt", "_encrypt")

    def __init__(self, key: bytes) -> None:
        # A wrong-sized key is a programming error, not tampering, so it is not IntegrityError;
        # the module-level ``open`` still maps it to IntegrityError to keep that path opaque.
        if len(key) != KEY_SIZE:
            raise ValueError(f"AES-256 key must be {KEY_SIZE} bytes, got {len(key)}")
        aead = AESGCM(key)
        # Bound methods avoid two attribute lookups on the hot path.
        self._encrypt = aead.encrypt
        self._decrypt = aead.decrypt

    def seal(
        self, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None
    ) -> tuple[bytes, bytes]:
        """Encrypt and authenticate; returns ``(nonce, ciphertext || tag)``.

        ``nonce`` is for test vectors only: with random 96-bit nonces a key can safely seal far
        more records than any session produces, whereas a caller-chosen nonce reused once under
        the same key breaks both confidentiality and authenticity.
        """
        if nonce is None:
            nonce = _urandom(NONCE_SIZE)
        elif len(nonce) != NONCE_SIZE:
            raise ValueError(f"nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")
        return nonce, self._encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Authenticate and decrypt, or raise the opaque ``IntegrityError``."""
        if len(nonce) != NONCE_SIZE or len(ciphertext) < TAG_SIZE:
            raise IntegrityError()
        try:
            return self._decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError, TypeError, OverflowError):
            # ``from None``: the cause would tell an attacker which check failed.
            raise IntegrityError() from None


def seal(
    key: bytes, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None
) -> tuple[bytes, bytes]:
    """One-shot ``Sealer(key).seal(...)``; use a ``Sealer`` when sealing many records."""
    return Sealer(key).seal(plaintext, aad, nonce=nonce)


def open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """One-shot ``Sealer(key).open(...)``; any failure, a bad key included, is IntegrityError."""
    try:
        sealer = Sealer(key)
    except (ValueError, TypeError):
        raise IntegrityError() from None
    return sealer.open(nonce, ciphertext, aad)


def signing_key_generate() -> bytes:
    """A fresh Ed25519 private key as its raw 32-byte seed."""
    return Ed25519PrivateKey.generate().private_bytes_raw()


def signing_public_key(private: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key for a raw private key."""
    return Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def sign(private: bytes, message: bytes) -> bytes:
    """A 64-byte Ed25519 signature."""
    return Ed25519PrivateKey.from_private_bytes(private).sign(message)


def verify_signature(public: bytes, message: bytes, signature: bytes) -> bool:
    """True only for a valid signature; malformed keys or signatures give False, never raise.

    ``public`` must come from a trusted place (the keyring or a published copy): whoever picks
    the public key decides what verifies, and a few degenerate (small-order) keys accept
    signatures their holder never made.
    """
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
