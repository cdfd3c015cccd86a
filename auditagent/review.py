"""Decrypt-on-read: unwrap a session's data key, open its envelopes, shape transcripts, and build
and check offline evidence bundles.

Callers must have written the access-log row before calling anything here that returns
plaintext; this module does not know who is asking.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from . import chain, crypto, records
from .envelope import SessionOpener, dek_context
from .errors import AuditagentError, IntegrityError, KeyringError
from .keys import KeyProvider, WrappedKey

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "BundleCheck",
    "KeyShredded",
    "OpenedRecord",
    "RecordUnreadable",
    "TranscriptEntry",
    "check_bundle",
    "open_records",
    "read_verified",
    "session_sealer",
    "transcript_entries",
]

BUNDLE_FORMAT: Final = "auditagent-evidence-bundle"
BUNDLE_VERSION = 1


class KeyShredded(AuditagentError):
    """The session's data key was destroyed (erasure or retention): its content is gone."""

    def __init__(self, session_id: uuid.UUID) -> None:
        super().__init__(
            f"session {session_id} was erased: its data key has been destroyed",
            fix="its chain still verifies with `auditagent verify`",
        )


class RecordUnreadable(AuditagentError):
    """A sealed record failed to open or decode: altered, moved, or from a newer version."""

    def __init__(self, session_id: uuid.UUID, seq: int, why: str) -> None:
        self.seq = seq
        super().__init__(
            f"session {session_id}: record seq {seq} cannot be read ({why})",
            fix=f"run `auditagent verify {session_id}`",
        )


def session_sealer(key_provider: KeyProvider, data_key_row: Any, session: Any) -> crypto.Sealer:
    """The session's AES-GCM sealer, from its wrapped data key row."""
    if (
        data_key_row is None
        or data_key_row.wrapped is None
        or data_key_row.shredded_at is not None
        or session.status in ("shredded", "purged")
    ):
        raise KeyShredded(session.id)
    context = dek_context(
        tenant=data_key_row.tenant, session_id=data_key_row.session_id, key_id=data_key_row.key_id
    )
    try:
        key = key_provider.unwrap(
            WrappedKey(
                master_key_id=data_key_row.master_key_id or "", blob=bytes(data_key_row.wrapped)
            ),
            context=context,
        )
    except IntegrityError:
        raise RecordUnreadable(session.id, -1, "data key failed to unwrap") from None
    except KeyringError:
        raise
    return crypto.Sealer(key)


@dataclass(frozen=True)
class OpenedRecord:
    seq: int
    at: datetime
    kind: str
    record: records.Record


def open_records(sealer: crypto.Sealer, rows: Iterable[Any]) -> Iterator[OpenedRecord]:
    """Decrypt and decode each sealed row; ``RecordUnreadable`` on the first that fails.

    ``rows`` are anything with the event columns as attributes (ORM/Core rows, ``Envelope``).
    The associated data is the same as :func:`envelope.aad` of each row's own fields; its
    per-session part is encoded once per session rather than once per row.
    """
    opener: SessionOpener | None = None
    for row in rows:
        session_id, seq, kind = row.session_id, row.seq, row.kind
        if opener is None or session_id != opener.session_id:
            opener = SessionOpener(
                sealer, tenant=row.tenant, session_id=session_id, key_id=row.key_id
            )
        try:
            plaintext = opener.open(
                seq=seq,
                kind=kind,
                nonce=bytes(row.nonce),
                ciphertext=bytes(row.ciphertext),
                tenant=row.tenant,
                key_id=row.key_id,
            )
        except IntegrityError:
            raise RecordUnreadable(session_id, seq, "integrity check failed") from None
        yield OpenedRecord(
            seq=seq, at=row.at, kind=kind, record=_decode(session_id, seq, kind, plaintext)
        )


def _decode(session_id: uuid.UUID, seq: int, kind: str, plaintext: bytes) -> records.Record:
    try:
        record = records.decode(plaintext)
    except (ValidationError, ValueError):
        raise RecordUnreadable(session_id, seq, "unknown record format") from None
    if record.kind != kind:
        # The AAD binds kind, so this means a writer bug rather than tampering; still refuse.
        raise RecordUnreadable(session_id, seq, "kind does not match its row")
    return record


def _lp(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


_U32 = struct.Struct(">I")
_UUID_LP = _U32.pack(16)


def read_verified(
    sealer: crypto.Sealer,
    session: Any,
    rows: Iterable[tuple[Any, ...]],
    *,
    checkpoint: tuple[int, bytes] | None = None,
    problem: str | None = None,
) -> tuple[list[OpenedRecord], chain.VerifyResult]:
    """Decrypt every record of ``session`` and recompute its hash chain in the same pass.

    ``rows`` are tuples in ``reader.EVENT_TUPLE_COLUMNS`` order (``reader.event_tuples``), all
    of this session. Decryption fails closed exactly as :func:`open_records` does
    (``RecordUnreadable`` on the first record that does not open or decode); the chain result
    is what ``reader.verify_session`` would report for the same rows: the same checks, the
    session row's ``(event_count, head_hash)`` as checkpoint, and verification stops at the
    first bad record while decryption carries on. ``checkpoint`` / ``problem`` are the
    session's signed checkpoint, as for ``reader.verify_session``.
    """
    session_id: uuid.UUID = session.id
    expected_count = int(session.event_count or 0)
    exp_count = expected_count if expected_count > 0 else None
    exp_head = (
        bytes(session.head_hash)
        if exp_count is not None and session.head_hash is not None
        else None
    )
    opener: SessionOpener | None = None
    hash_head = _UUID_LP + session_id.bytes
    link = chain.link_fast
    lps: dict[str, bytes] = {}

    def lp(value: str) -> bytes:
        out = lps.get(value)
        if out is None:
            if len(lps) >= 256:
                lps.clear()
            out = lps[value] = _lp(value.encode())
        return out

    opened: list[OpenedRecord] = []
    append = opened.append
    prev = chain.GENESIS
    count = 0
    head_at_expected: bytes | None = chain.GENESIS if exp_count == 0 else None
    cp_count = checkpoint[0] if checkpoint is not None else -1
    head_at_cp: bytes | None = None
    tenant0: str | None = None
    failure: chain.VerifyResult | None = None

    def bad(seq: int | None, reason: str) -> chain.VerifyResult:
        return chain.VerifyResult(
            ok=False, events=count, first_bad_seq=seq, reason=reason, head_hash=prev
        )

    for seq, tenant, kind, at, key_id, nonce, ciphertext, prev_hash, digest in rows:
        if opener is None:
            opener = SessionOpener(sealer, tenant=tenant, session_id=session_id, key_id=key_id)
        try:
            plaintext = opener.open(
                seq=seq, kind=kind, nonce=nonce, ciphertext=ciphertext, tenant=tenant, key_id=key_id
            )
        except IntegrityError:
            raise RecordUnreadable(session_id, seq, "integrity check failed") from None
        append(
            OpenedRecord(
                seq=seq, at=at, kind=kind, record=_decode(session_id, seq, kind, plaintext)
            )
        )
        if failure is not None:
            continue
        # the checks of chain.verify, in its order
        if seq != count:
            if seq > count:
                failure = bad(count, f"missing seq {count}")
            else:
                failure = bad(seq, f"seq {seq} out of order or duplicated (expected {count})")
            continue
        if tenant0 is None:
            tenant0 = tenant
        elif tenant != tenant0:
            failure = bad(seq, "record belongs to another session")
            continue
        try:
            if prev_hash != prev:
                failure = bad(seq, "prev_hash mismatch")
                continue
            computed = link(
                prev_hash=prev_hash,
                head=hash_head,
                seq=seq,
                kind_lp=lp(kind),
                key_lp=lp(key_id),
                tenant=tenant,
                at=at,
                nonce=nonce,
                ciphertext=ciphertext,
            )
        except (ValueError, TypeError, AttributeError, struct.error) as exc:
            failure = bad(seq, f"malformed record: {type(exc).__name__}")
            continue
        if computed != digest:
            failure = bad(seq, "hash mismatch (record altered)")
            continue
        prev = computed
        count += 1
        if exp_count is not None and count == exp_count:
            head_at_expected = computed
        if count == cp_count:
            head_at_cp = computed

    if failure is not None:
        return opened, failure
    if exp_count is not None:
        if count < exp_count:
            return opened, bad(count, f"chain truncated: {count} events, expected {exp_count}")
        if exp_head is not None and head_at_expected != exp_head:
            return opened, bad(None, "head hash mismatch at checkpoint")
    result = chain.VerifyResult(
        ok=True, events=count, first_bad_seq=None, reason=None, head_hash=prev
    )
    return opened, chain.hold_to_commitments(
        result,
        status=getattr(session, "status", None),
        checkpoint=checkpoint,
        head_at_checkpoint=head_at_cp,
        problem=problem,
    )


# --- transcripts -----------------------------------------------------------------------------

EntryKind = Literal[
    "user",
    "agent",
    "tool_call",
    "tool_result",
    "handoff",
    "error",
    "notice",
    "gap",
    "opened",
    "closed",
    "agent_config_updated",
    "transcription_enabled",
]


class Timing(BaseModel):
    """Latencies in seconds from the turn_timing records attached to this turn."""

    model_config = ConfigDict(extra="forbid")

    transcription_delay: float | None = None
    end_of_utterance_delay: float | None = None
    llm_ttft: float | None = None
    tts_ttfb: float | None = None
    realtime_ttft: float | None = None
    e2e_latency: float | None = None


class TranscriptEntry(BaseModel):
    """One human-readable line of a conversation. Fields not meaningful for a kind are null."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    at: datetime
    kind: EntryKind
    text: str | None = None
    """User: the final transcript. Agent: what the user heard (see ``heard_text_known``)."""
    generated_text: str | None = None
    """Agent only: the full generated text, when it differs from what was heard."""
    heard_text_known: bool | None = None
    interrupted: bool | None = None
    name: str | None = None
    """Tool name (tool_call/tool_result), new agent (handoff), error source, notice code."""
    call_id: str | None = None
    arguments: str | None = None
    output: str | None = None
    is_error: bool | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    timing: Timing | None = None


_TIMING_FIELDS = tuple(Timing.model_fields)


def transcript_entries(opened: Iterable[OpenedRecord]) -> list[TranscriptEntry]:
    """Shape records into transcript entries; turn_timing is folded into the turn it measures
    (by item/speech id, else the latest utterance of that role) rather than listed."""
    # Plain dicts while timings are folded in; each model is built once at the end.
    entries: list[dict[str, Any]] = []
    timings: dict[int, dict[str, float | None]] = {}
    by_item: dict[str, int] = {}
    last_of: dict[str, int] = {}
    for o in opened:
        r = o.record
        entry: dict[str, Any] | None = None
        if isinstance(r, records.UserUtterance):
            entry = dict(
                seq=o.seq,
                at=r.at,
                kind="user",
                text=r.text,
                interrupted=r.interrupted,
                started_at=r.started_at,
                ended_at=r.ended_at,
            )
            last_of["user"] = len(entries)
        elif isinstance(r, records.AgentUtterance):
            differs = r.generated_text is not None and r.generated_text != r.text
            entry = dict(
                seq=o.seq,
                at=r.at,
                kind="agent",
                text=r.text,
                generated_text=r.generated_text if differs else None,
                heard_text_known=r.heard_text_known,
                interrupted=r.interrupted,
                started_at=r.started_at,
                ended_at=r.ended_at,
            )
            last_of["assistant"] = len(entries)
        elif isinstance(r, records.ToolCall):
            entry = dict(
                seq=o.seq,
                at=r.at,
                kind="tool_call",
                name=r.name,
                call_id=r.call_id,
                arguments=r.arguments,
            )
        elif isinstance(r, records.ToolResult):
            entry = dict(
                seq=o.seq,
                at=r.at,
                kind="tool_result",
                name=r.name,
                call_id=r.call_id,
                output=r.output if not r.is_error else (r.exception or r.output),
                is_error=r.is_error,
            )
        elif isinstance(r, records.Handoff):
            entry = dict(
                seq=o.seq,
                at=r.at,
                kind="handoff",
                name=r.new_agent_name or r.new_agent_id,
                text=f"{r.old_agent_name or r.old_agent_id or '?'} -> "
                f"{r.new_agent_name or r.new_agent_id or '?'}",
            )
        elif isinstance(r, records.ErrorRecord):
            entry = dict(
                seq=o.seq, at=r.at, kind="error", name=r.source, text=r.message, is_error=True
            )
        elif isinstance(r, records.Notice):
            entry = dict(seq=o.seq, at=r.at, kind="notice", name=r.code, text=r.message)
        elif isinstance(r, records.Gap):
            entry = dict(seq=o.seq, at=r.at, kind="gap", text=f"{r.count} records lost: {r.reason}")
        elif isinstance(r, records.Opened):
            entry = dict(seq=o.seq, at=r.at, kind="opened", name=r.agent_name)
        elif isinstance(r, records.Closed):
            entry = dict(
                seq=o.seq, at=r.at, kind="closed", text=r.reason, is_error=r.error is not None
            )
        elif isinstance(r, records.AgentConfigUpdated):
            entry = dict(seq=o.seq, at=r.at, kind="agent_config_updated", text=r.instructions)
        elif isinstance(r, records.TranscriptionEnabled):
            entry = dict(
                seq=o.seq, at=r.at, kind="transcription_enabled", name=r.transcription_model
            )
        elif isinstance(r, records.TurnTiming):
            target = by_item.get(r.item_id or "") if r.item_id else None
            if target is None and r.speech_id:
                target = by_item.get(r.speech_id)
            if target is None and r.role is not None:
                target = last_of.get(r.role)
            if target is not None:
                timing = timings.get(target)
                if timing is None:
                    timings[target] = {f: getattr(r, f) for f in _TIMING_FIELDS}
                else:
                    for f in _TIMING_FIELDS:
                        value = getattr(r, f)
                        if value is not None:
                            timing[f] = value
            continue
        if entry is None:
            continue
        item_id = getattr(r, "item_id", None)
        if isinstance(item_id, str) and item_id:
            by_item[item_id] = len(entries)
        entries.append(entry)
    return [
        TranscriptEntry(**e, timing=Timing(**timings[i]) if i in timings else None)
        for i, e in enumerate(entries)
    ]


# --- evidence bundles ------------------------------------------------------------------------


def chain_row_json(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "kind": row.kind,
        "at": row.at.astimezone(timezone.utc).isoformat(),
        "key_id": row.key_id,
        "nonce": bytes(row.nonce).hex(),
        "ciphertext": bytes(row.ciphertext).hex(),
        "prev_hash": bytes(row.prev_hash).hex(),
        "hash": bytes(row.hash).hex(),
    }


@dataclass(frozen=True)
class BundleCheck:
    ok: bool
    session_id: str
    events: int
    first_bad_seq: int | None
    reason: str | None


@dataclass(frozen=True)
class _BundleRow:
    session_id: uuid.UUID
    seq: int
    tenant: str
    kind: str
    at: datetime
    key_id: str
    nonce: bytes
    ciphertext: bytes
    prev_hash: bytes
    hash: bytes


def check_bundle(doc: Any) -> BundleCheck:
    """Verify an exported bundle offline, without any key.

    Recomputes the chain from the hex rows and holds it to the bundle's stated count and head;
    the decrypted records are checked only for matching the chain's seq and kind, since their
    content cannot be tied to the ciphertext without the data key.
    """
    sid = "?"
    try:
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if doc.get("format") != BUNDLE_FORMAT:
            raise ValueError("not an auditagent evidence bundle")
        if doc.get("version") != BUNDLE_VERSION:
            raise ValueError(f"unsupported bundle version {doc.get('version')!r}")
        session = doc["session"]
        sid = str(session["id"])
        session_id = uuid.UUID(sid)
        tenant = str(session["tenant"])
        stated_count = int(session["event_count"])
        stated_head = session.get("head_hash")
        head = bytes.fromhex(stated_head) if isinstance(stated_head, str) and stated_count else None
        rows = [
            _BundleRow(
                session_id=session_id,
                seq=int(r["seq"]),
                tenant=tenant,
                kind=str(r["kind"]),
                at=datetime.fromisoformat(str(r["at"])),
                key_id=str(r["key_id"]),
                nonce=bytes.fromhex(r["nonce"]),
                ciphertext=bytes.fromhex(r["ciphertext"]),
                prev_hash=bytes.fromhex(r["prev_hash"]),
                hash=bytes.fromhex(r["hash"]),
            )
            for r in doc["chain"]
        ]
        recs = doc.get("records") or []
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return BundleCheck(False, sid, 0, None, f"malformed bundle: {exc}")
    # The session's stated (event_count, head_hash) act as a checkpoint, as in the database
    # verifier: a row cut from the end of the bundle is caught there.
    result = chain.verify(rows, expected_count=stated_count or None, expected_head=head)
    if not result.ok:
        return BundleCheck(False, sid, result.events, result.first_bad_seq, result.reason)
    if recs:
        kinds = {r.seq: r.kind for r in rows}
        for rec in recs:
            seq = rec.get("seq") if isinstance(rec, dict) else None
            if not isinstance(seq, int) or kinds.get(seq) != rec.get("kind"):
                return BundleCheck(
                    False,
                    sid,
                    result.events,
                    seq if isinstance(seq, int) else None,
                    "decrypted record does not match the chain",
                )
    return BundleCheck(True, sid, result.events, None, None)


def load_bundle(data: bytes) -> Any:
    return json.loads(data)
