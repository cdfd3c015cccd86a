"""Request and response models of the review API (separate from the ORM models)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from auditagent.review import Timing, TranscriptEntry


def _iso_only(value: Any) -> Any:
    # pydantic reads a bare number as a Unix timestamp; an audit query should say what it means.
    if isinstance(value, (int, float)) or (
        isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit()
    ):
        raise ValueError("expected an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]

__all__ = [
    "AccessLogEntry",
    "AccessLogPage",
    "ApiKey",
    "ApiKeyList",
    "BundleSession",
    "BundleSignature",
    "ChainRow",
    "DeletionRecordOut",
    "EventItem",
    "EventList",
    "EvidenceBundle",
    "Health",
    "LatencyGroup",
    "LatencyReport",
    "LatencyStat",
    "LegalHold",
    "SessionDetail",
    "SessionPage",
    "SessionSummary",
    "Timing",
    "Transcript",
    "TranscriptEntry",
    "TranscriptIntegrity",
    "VerifyReport",
]

# Free text that ends up in SQL parameters: no control characters (Postgres refuses NUL).
SAFE_TEXT = r"^[^\x00-\x1f\x7f]*$"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionSummary(_Out):
    id: uuid.UUID
    tenant: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    close_reason: str | None
    architecture: str | None
    agent_name: str | None
    labels: dict[str, Any]
    tool_names: list[str]
    models: dict[str, Any]
    event_count: int
    notice: str | None = Field(
        default=None,
        description="Recording notice: null (none asked for), incomplete, or completed",
    )


class SessionPage(_Out):
    items: list[SessionSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class LegalHold(_Out):
    id: uuid.UUID
    scope: Literal["session", "participant", "tenant"]
    reason: str
    created_by: str
    created_at: datetime


class DeletionRecordOut(_Out):
    """A deletion record: proof that a session was erased or expired, signed with the
    checkpoint key (`auditagent keys public`)."""

    seq: int
    run_id: uuid.UUID | None
    session_id: uuid.UUID
    tenant: str
    policy: str
    reason: str
    event_count: int
    final_hash: str | None = Field(description="Hex hash of the session's last record")
    deleted_at: datetime = Field(description="The real time of deletion (database clock)")
    hash: str = Field(description="Hex hash of this record in the deletion chain")
    prev_hash: str | None = None
    basis: dict[str, Any] | None = Field(
        default=None,
        description="Why it was due: end time and chained close time, policy version and "
        "keep period, default, floor, expiry, the run's clock, the hold check",
    )
    signature: str | None = Field(default=None, description="Base64 Ed25519 signature")
    valid: bool | None = Field(
        default=None, description="Hash, signature and basis verified (null: not checked)"
    )
    problems: list[str] = Field(default_factory=list)


class VerifyReport(_Out):
    session_id: uuid.UUID
    ok: bool
    events: int = Field(description="Records that verified before the first failure")
    first_bad_seq: int | None
    reason: str | None
    head_hash: str = Field(description="Hex hash of the last verified record")
    erased: bool = Field(
        default=False,
        description="The session was erased or expired: its data key is destroyed and its "
        "records deleted; `ok` then says whether a valid signed deletion record accounts for it",
    )
    deletion_record: DeletionRecordOut | None = None


class SessionDetail(SessionSummary):
    head_hash: str | None
    counts: dict[str, int] = Field(description="Stored records by kind")
    integrity: VerifyReport
    legal_holds: list[LegalHold]


class TranscriptIntegrity(_Out):
    """The session's hash chain, recomputed from the same rows the transcript was read from
    and held to the session's stored count and head hash (as `/verify` does)."""

    ok: bool
    first_bad_seq: int | None = Field(description="First record that failed, if any")
    reason: str | None


class Transcript(_Out):
    session_id: uuid.UUID
    entries: list[TranscriptEntry]
    integrity: TranscriptIntegrity | None = Field(
        default=None,
        description="The chain checked in the same pass as the read; always set by this "
        "service (null only in a Transcript built by other code).",
    )


class EventItem(_Out):
    seq: int
    at: datetime
    kind: str
    record: dict[str, Any]


class EventList(_Out):
    session_id: uuid.UUID
    events: list[EventItem]
    integrity: TranscriptIntegrity = Field(
        description="The chain checked in the same pass as the read, exactly as `/transcript`"
        " reports it"
    )


class AccessLogEntry(_Out):
    seq: int
    at: datetime
    principal_id: uuid.UUID | None
    principal_name: str | None
    role: str | None
    tenant: str | None
    action: str
    session_id: uuid.UUID | None
    route: str | None
    reason: str | None
    correlation_id: str | None
    detail: dict[str, Any]
    hash: str


class AccessLogPage(_Out):
    items: list[AccessLogEntry]
    next_cursor: str | None


class LatencyStat(_Out):
    count: int
    p50: float | None
    p95: float | None


class LatencyGroup(_Out):
    key: str | None
    sessions: int
    turns: int = Field(description="turn_timing records counted (each measurement once)")
    metrics: dict[str, LatencyStat] = Field(
        description="transcription_delay, end_of_utterance_delay, llm_ttft, tts_ttfb, "
        "realtime_ttft, e2e_latency; seconds. A measurement LiveKit reports twice (metrics "
        "event and the turn's chat message) is counted once, from the chat message."
    )


class LatencyReport(_Out):
    """Over the sessions in scope. Sessions that could not be read are left out of the figures
    and counted, never silently: `sessions_unreadable` (and the master keys this service's
    keyring lacks in `unreadable_master_keys`), `sessions_erased`."""

    group_by: str
    sessions_scanned: int = Field(description="Sessions whose timings are in the figures")
    sessions_unreadable: int = Field(
        default=0,
        description="Sessions left out: their data key does not unwrap with this keyring, or "
        "a sealed record failed its integrity check",
    )
    unreadable_master_keys: list[str] = Field(
        default_factory=list,
        description="Master key ids that wrapped data keys this keyring could not unwrap",
    )
    sessions_erased: int = Field(
        default=0, description="Sessions left out: erased (data key destroyed) meanwhile"
    )
    truncated: bool = Field(description="True when max_sessions cut the scan short")
    groups: list[LatencyGroup]


class ApiKey(_Out):
    id: uuid.UUID
    name: str
    role: Literal["auditor", "admin"]
    tenant: str | None
    token_prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyList(_Out):
    items: list[ApiKey]


class Health(_Out):
    status: Literal["ok"]
    database: Literal["ok"]


class ChainRow(_Out):
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


class BundleSignature(_Out):
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


class EvidenceBundle(_Out):
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
    signature: BundleSignature
