"""Moved to :mod:`auditagent.integrity.envelope`; an alias until every import is repointed."""

from __future__ import annotations

from auditagent.integrity.envelope import (
    Envelope,
    SessionOpener,
    SessionSealer,
    aad,
    dek_context,
    open_envelope,
    seal_record,
)

__all__ = [
    "Envelope",
    "SessionOpener",
    "SessionSealer",
    "aad",
    "dek_context",
    "open_envelope",
    "seal_record",
]
