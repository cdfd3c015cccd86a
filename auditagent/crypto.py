"""Moved to :mod:`auditagent.integrity.crypto`; an alias until every import is repointed."""

from __future__ import annotations

from auditagent.integrity.crypto import (
    KEY_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    Sealer,
    new_data_key,
    new_nonce,
    open,
    seal,
    self_signed_certificate,
    sign,
    signing_key_generate,
    signing_public_key,
    verify_signature,
)

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "Sealer",
    "new_data_key",
    "new_nonce",
    "open",
    "seal",
    "self_signed_certificate",
    "sign",
    "signing_key_generate",
    "signing_public_key",
    "verify_signature",
]
