"""The signed evidence bundle (`/v1/sessions/{id}/export`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from .audio import BundleAudio
from .base import ApiModel
from .sessions import SessionSummary
from .transcripts import EventItem
from .verify import VerifyReport


class ChainRow(ApiModel):
    """One sealed record exactly as stored, binary fields in hex."""

    seq: int
    kind: str
    at: datetime
    key_id: str
    nonce: str
    ciphertext: str
    prev_hash: str
    hash: str


class BundleSession(SessionSummary):
    head_hash: str | None


class BundleSignature(ApiModel):
    """The service's Ed25519 signature over the whole bundle (every member but this one)."""

    algorithm: Literal["Ed25519"]
    public_key: str = Field(description="Raw 32-byte Ed25519 public key, base64")
    key_id: str = Field(description="C2SP signed-note key id (hex), as in checkpoints")
    canonicalization: str = Field(description="How the signed bytes are made from the bundle")
    canonical_sha256: str = Field(description="SHA-256 (hex) of the signed bytes")
    value: str = Field(description="Ed25519 signature over the canonical bytes, base64")
    parts: dict[str, Any] = Field(
        description="Short SHA-256 of each part, so a verifier can name what changed"
    )
    parts_value: str = Field(description="Ed25519 signature over the canonical `parts`, base64")
    how_to_check: str = Field(description="What a recipient can check without auditagent")


class EvidenceBundle(ApiModel):
    """Self-contained, signed export; `auditagent verify --bundle FILE --public-key K` checks it
    without any data key, and without auditagent (see `signature.how_to_check`)."""

    format: Literal["auditagent-evidence-bundle"]
    version: int
    exported_at: datetime
    exported_by: str
    session: BundleSession
    records: list[EventItem]
    chain: list[ChainRow]
    verification: VerifyReport
    audio: BundleAudio | None = Field(
        default=None, description="With `?audio=true`: the call's recording (issue 15)"
    )
    signature: BundleSignature
