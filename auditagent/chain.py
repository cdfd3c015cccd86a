"""Moved to :mod:`auditagent.integrity.chain`; an alias until every import is repointed."""

from __future__ import annotations

from auditagent.integrity.chain import (
    GENESIS,
    HASH_SIZE,
    ChainRecord,
    ChainVerifier,
    VerifyResult,
    at_microseconds,
    hold_to_commitments,
    link,
    link_fast,
    verify,
)

__all__ = [
    "GENESIS",
    "HASH_SIZE",
    "ChainRecord",
    "ChainVerifier",
    "VerifyResult",
    "at_microseconds",
    "hold_to_commitments",
    "link",
    "link_fast",
    "verify",
]
