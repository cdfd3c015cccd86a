"""SQLAlchemy 2 typed tables. Plaintext columns here hold metadata only, never content.

Every key of ``events`` starts with ``session_id`` so the table can later be hash-distributed by
session (Citus) and range-partitioned by time without a redesign.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SessionRow(Base):
    """One recorded conversation. Mutable metadata (close time, counts); content lives in events."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(TZ)
    ended_at: Mapped[datetime | None] = mapped_column(TZ)
    close_reason: Mapped[str | None] = mapped_column(String(64))
    architecture: Mapped[str | None] = mapped_column(String(16))
    agent_name: Mapped[str | None] = mapped_column(String(256))
    labels: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    # HMAC of the participant identity under a keyring index key: exact-match search, no plaintext.
    participant_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    tool_names: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    models: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    event_count: Mapped[int] = mapped_column(Integer, server_default="0")
    head_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    # open -> closed -> (shredded -> purged); shredded/purged only through the retention path.
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    # NULL: no recording notice asked for; 'incomplete' / 'completed' (migration 0014)
    notice: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('open','closed','shredded','purged')", name="status_valid"),
        CheckConstraint(
            "notice IS NULL OR notice IN ('completed','incomplete')", name="notice_valid"
        ),
        Index("ix_sessions_tenant_started", "tenant", "started_at", "id"),
        Index("ix_sessions_started", "started_at", "id"),
        Index("ix_sessions_participant", "participant_index"),
        Index("ix_sessions_tool_names", "tool_names", postgresql_using="gin"),
        Index("ix_sessions_ended", "ended_at"),
    )


class DataKeyRow(Base):
    """A session's data key, only ever stored wrapped by a master key version."""

    __tablename__ = "data_keys"

    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(128))
    master_key_id: Mapped[str | None] = mapped_column(String(64))
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    rewrapped_at: Mapped[datetime | None] = mapped_column(TZ)
    shredded_at: Mapped[datetime | None] = mapped_column(TZ)

    __table_args__ = (Index("ix_data_keys_master_key_id", "master_key_id"),)


class EventRow(Base):
    """Append-only sealed records. Only kind and time are plaintext."""

    __tablename__ = "events"

    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(TZ)
    key_id: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary)
    ingested_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    session_started_at: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    """The session's ``started_at``: the partition key (monthly partitions, migration 0016)."""

    __table_args__ = (
        CheckConstraint("seq >= 0", name="seq_nonnegative"),
        {"postgresql_partition_by": "RANGE (session_started_at)"},
    )


class PrincipalRow(Base):
    """An API identity. Only a hash of its token is stored."""

    __tablename__ = "principals"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str | None] = mapped_column(String(128))
    token_prefix: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)
    last_used_at: Mapped[datetime | None] = mapped_column(TZ)

    __table_args__ = (CheckConstraint("role IN ('auditor','admin')", name="role_valid"),)


class AccessLogRow(Base):
    """Who read what, when and why. Append-only and hash-chained like events."""

    __tablename__ = "access_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    principal_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    principal_name: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str | None] = mapped_column(String(16))
    tenant: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    route: Mapped[str | None] = mapped_column(String(256))
    reason: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_access_log_tenant_at", "tenant", "at"),
        Index("ix_access_log_session", "session_id"),
    )


class LegalHoldRow(Base):
    """A hold on a session, a participant (by blind index) or a whole tenant."""

    __tablename__ = "legal_holds"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str] = mapped_column(String(128))
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    participant_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    released_at: Mapped[datetime | None] = mapped_column(TZ)
    released_by: Mapped[str | None] = mapped_column(String(256))
    release_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("scope IN ('session','participant','tenant')", name="scope_valid"),
        Index("ix_legal_holds_tenant", "tenant"),
        Index("ix_legal_holds_session", "session_id"),
    )


class RetentionPolicyRow(Base):
    """Keep sessions of a tenant (optionally with one agent label) a calendar period after they
    ended. Versioned and insert-only: a change is a new version, a removal a ``deleted`` one;
    each version is also an entry of the signed ``retention_changes`` log."""

    __tablename__ = "retention_policies"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    agent: Mapped[str | None] = mapped_column(String(256))
    keep_days: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    keep_months: Mapped[int] = mapped_column(Integer, server_default="0")
    keep_years: Mapped[int] = mapped_column(Integer, server_default="0")
    deleted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (
        CheckConstraint(
            "keep_days >= 0 AND keep_months >= 0 AND keep_years >= 0 "
            "AND (deleted OR keep_days + keep_months + keep_years > 0)",
            name="keep_valid",
        ),
        Index(
            "uq_retention_policies_tenant_agent_version", "tenant", "agent", "version", unique=True
        ),
        # NULLs are distinct in the index above: one tenant-wide (agent IS NULL) row per version.
        Index(
            "uq_retention_policies_tenant_default_version",
            "tenant",
            "version",
            unique=True,
            postgresql_where=text("agent IS NULL"),
        ),
    )


class RetentionChangeRow(Base):
    """Every policy and legal-hold change, hash-chained and signed (Ed25519, the checkpoint
    key): removing, editing or inserting a policy or hold outside auditagent shows."""

    __tablename__ = "retention_changes"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(TZ)
    action: Mapped[str] = mapped_column(String(32))
    tenant: Mapped[str] = mapped_column(String(128))
    subject: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    actor: Mapped[str] = mapped_column(String(256))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_retention_changes_subject", "subject"),)


class RetentionRunRow(Base):
    __tablename__ = "retention_runs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(TZ)
    dry_run: Mapped[bool] = mapped_column(Boolean)
    tenant: Mapped[str | None] = mapped_column(String(128))
    trigger: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    sessions_deleted: Mapped[int] = mapped_column(Integer, server_default="0")
    events_deleted: Mapped[int] = mapped_column(BigInteger, server_default="0")
    sessions_skipped_held: Mapped[int] = mapped_column(Integer, server_default="0")
    errors: Mapped[int] = mapped_column(Integer, server_default="0")
    sessions_matched: Mapped[int] = mapped_column(Integer, server_default="0")
    # Who asked (CLI user or API key) and why (erasure request reference); never personal data.
    requested_by: Mapped[str | None] = mapped_column(String(256))
    reason: Mapped[str | None] = mapped_column(Text)


class DeletionRecordRow(Base):
    """Proof of a purge, chained so that removing one is itself detectable."""

    __tablename__ = "deletion_records"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("retention_runs.id")
    )
    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    tenant: Mapped[str] = mapped_column(String(128))
    policy: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(String(32))
    event_count: Mapped[int] = mapped_column(Integer)
    final_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    deleted_at: Mapped[datetime] = mapped_column(TZ)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary)
    # Why it was due (end time, policy version, floor, hold check, run clock), hashed with the
    # record; and the Ed25519 signature over the hash, so the database alone cannot forge one.
    basis: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_deletion_records_session", "session_id"),)


class SearchIndexRow(Base):
    """Keyed, truncated word beacons (auditagent.search): per session, key version and role,
    one row per batch the writer stored, holding the beacons new in it (each beacon in one row
    of its session and role; ``first_token`` is the smallest). Stored as ``scope << 14 |
    beacon`` (``BeaconKey.scope``) under one GIN index. Derived data, outside the hash chain;
    `auditagent search reindex` rebuilds it, and erasing a session deletes its rows with it."""

    __tablename__ = "search_index"

    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    first_token: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    tokens: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    session_started_at: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    """The session's ``started_at``: the partition key (monthly partitions, migration 0018)."""

    __table_args__ = (
        CheckConstraint("role IN (1, 2, 3)", name="role_valid"),
        CheckConstraint("first_token >= 0", name="token_nonnegative"),
        Index("ix_search_index_tokens", "tokens", postgresql_using="gin"),
        Index("ix_search_index_tenant_key", "tenant", "key_id"),
        {"postgresql_partition_by": "RANGE (session_started_at)"},
    )


class SearchIndexSessionRow(Base):
    """Which key version a session's index rows are under: what a reindex has still to do."""

    __tablename__ = "search_index_sessions"

    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(64))
    indexed_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    word_filter: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The session's word filter under ``key_id`` (auditagent/search/wordfilter.py), once it
    closed with every record indexed: keyed bits, never a word."""

    __table_args__ = (Index("ix_search_index_sessions_tenant_key", "tenant", "key_id"),)


class UiSignInRow(Base):
    """A review-UI sign-in (the browser holds only its secret, this row only the secret's
    hash) or a one-time sign-in token (``kind='once'``), ended when used."""

    __tablename__ = "ui_signins"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    principal_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("principals.id"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    ended_at: Mapped[datetime | None] = mapped_column(TZ)
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("kind IN ('signin','once')", name="kind_valid"),
        Index("ix_ui_signins_principal", "principal_id"),
    )


class AudioChunkRow(Base):
    """Sealed chunks of a session's call audio (issue 15). Keyed by session first, like events,
    so it can be hash-distributed or partitioned by session; only placement is plaintext."""

    __tablename__ = "audio_chunks"

    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tenant: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(64))
    offset_samples: Mapped[int] = mapped_column(BigInteger)
    duration_samples: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(Integer)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    ingested_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    session_started_at: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    """The session's ``started_at``: the partition key (monthly partitions, migration 0018)."""

    __table_args__ = (
        CheckConstraint(
            "chunk_index >= 0 AND offset_samples >= 0 AND duration_samples >= 0 AND size >= 0",
            name="placement_valid",
        ),
        {"postgresql_partition_by": "RANGE (session_started_at)"},
    )


# Tables whose rows may never change outside the retention path (see migrations).
APPEND_ONLY_TABLES = (
    "events",
    "access_log",
    "deletion_records",
    "audio_chunks",
    "retention_changes",
    "retention_policies",
)
