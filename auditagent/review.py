"""Decrypt-on-read: unwrap a session's data key, open its envelopes, shape transcripts, and build
and check offline evidence bundles.

Callers must have written the access-log row before calling anything here that returns
plaintext; this module does not know who is asking.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from auditagent.integrity.encoding import lp as _lp

from . import chain, crypto, records
from .envelope import SessionOpener, dek_context
from .errors import AuditagentError, IntegrityError, KeyringError
from .keys import KeyProvider, WrappedKey

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "BundleCheck",
    "DataKeyUnavailable",
    "KeyShredded",
    "OpenedRecord",
    "RecordUnreadable",
    "TranscriptEntry",
    "canonical_json",
    "check_bundle",
    "open_records",
    "read_verified",
    "session_sealer",
    "sign_bundle",
    "transcript_entries",
]

BUNDLE_FORMAT: Final = "auditagent-evidence-bundle"
BUNDLE_VERSION = 2
"""2: the whole document is signed (``signature``); 1 was unsigned."""


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


class DataKeyUnavailable(KeyringError):
    """The keyring cannot unwrap a session's data key: the master key version that wrapped it
    is missing, or the keyring is another one. Names the master key id, never a path."""

    def __init__(self, session_id: uuid.UUID, master_key_id: str, *, missing: bool) -> None:
        self.session_id = session_id
        self.master_key_id = master_key_id
        why = (
            f"master key {master_key_id!r} is not in this keyring"
            if missing
            else f"master key {master_key_id!r} of this keyring does not unwrap it "
            "(another keyring file, or the wrapped key was altered)"
        )
        super().__init__(
            f"the data key of session {session_id} cannot be unwrapped: {why}",
            fix=f"restore the keyring that holds master key {master_key_id!r} "
            "(AUDITAGENT_KEYRING_PATH)",
        )


def session_sealer(key_provider: KeyProvider, data_key_row: Any, session: Any) -> crypto.Sealer:
    """The session's AES-GCM sealer, from its wrapped data key row; ``DataKeyUnavailable``
    (naming the master key id) when this keyring cannot unwrap it."""
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
    master_key_id = data_key_row.master_key_id or ""
    try:
        key = key_provider.unwrap(
            WrappedKey(master_key_id=master_key_id, blob=bytes(data_key_row.wrapped)),
            context=context,
        )
    except IntegrityError:
        raise DataKeyUnavailable(session.id, master_key_id, missing=False) from None
    except KeyringError:
        raise DataKeyUnavailable(session.id, master_key_id, missing=True) from None
    return crypto.Sealer(key)


def check_newest_data_key(key_provider: KeyProvider, row: Any) -> None:
    """Unwrap the newest data key (``reader.newest_data_key``) or raise ``DataKeyUnavailable``:
    a service started with the wrong keyring says so at once, naming the key id."""
    if row is None:
        return
    master_key_id = row.master_key_id or ""
    context = dek_context(tenant=row.tenant, session_id=row.session_id, key_id=row.key_id)
    try:
        key_provider.unwrap(
            WrappedKey(master_key_id=master_key_id, blob=bytes(row.wrapped)), context=context
        )
    except IntegrityError:
        raise DataKeyUnavailable(row.session_id, master_key_id, missing=False) from None
    except KeyringError:
        raise DataKeyUnavailable(row.session_id, master_key_id, missing=True) from None


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
    """What was measured for this turn, in seconds, from the turn_timing records attached to it.

    Only measured fields are set: a provider that reports nothing for a field leaves it out and
    says why in ``not_reported`` (Gemini Live reports no first-audio time).
    """

    model_config = ConfigDict(extra="forbid")

    transcription_delay: float | None = None
    end_of_utterance_delay: float | None = None
    llm_ttft: float | None = None
    tts_ttfb: float | None = None
    realtime_ttft: float | None = None
    """A realtime model's time to first audio, as the model reported it."""
    llm_duration: float | None = None
    """A realtime model's generation time, as it reported it."""
    e2e_latency: float | None = None
    tokens: records.TokenCounts | None = None
    not_reported: dict[str, str] | None = None
    """Field -> why the provider reported no value."""


class TranscriptEntry(BaseModel):
    """One human-readable line of a conversation.

    Each kind carries only the fields that apply to it (the API leaves the others out):
    user: text, interrupted, input_mode, started/ended_at, timing; agent: text,
    generated_text (when it differs), heard_text_known, interrupted, started/ended_at, timing;
    tool_call: name, call_id, arguments; tool_result: name, call_id, output, is_error;
    handoff: name (the new agent), text ("old -> new"); error: name, text, is_error;
    notice: name (its code), text; gap: text; opened: name; closed: text (the reason),
    is_error; agent_config_updated: text; transcription_enabled: name. Every entry has seq,
    at, kind and provenance.
    """

    model_config = ConfigDict(extra="forbid")

    seq: int
    at: datetime
    kind: EntryKind
    provenance: records.Provenance = "live"
    """``reconciled``: found in LiveKit's history at close, not delivered by an event."""
    text: str | None = None
    """User: the final transcript. Agent: what the user heard (see ``heard_text_known``)."""
    input_mode: records.InputMode | None = None
    """User only: ``speech`` or ``text`` (typed, or passed as ``user_input``)."""
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


_TIMING_VALUES = (
    "transcription_delay",
    "end_of_utterance_delay",
    "llm_ttft",
    "tts_ttfb",
    "realtime_ttft",
    "llm_duration",
    "e2e_latency",
)


def _agent_label(name: str | None, agent_id: str | None) -> str | None:
    return name or agent_id


def _entry(o: OpenedRecord, r: records.Record) -> dict[str, Any] | None:
    """The fields that apply to this record's kind; None for kinds not listed."""
    base: dict[str, Any] = {"seq": o.seq, "at": r.at, "provenance": r.provenance}
    if isinstance(r, records.UserUtterance):
        return {
            **base,
            "kind": "user",
            "text": r.text,
            "input_mode": r.input_mode,
            "interrupted": r.interrupted,
            "started_at": r.started_at,
            "ended_at": r.ended_at,
        }
    if isinstance(r, records.AgentUtterance):
        entry = {
            **base,
            "kind": "agent",
            "text": r.text,
            "heard_text_known": r.heard_text_known,
            "interrupted": r.interrupted,
            "started_at": r.started_at,
            "ended_at": r.ended_at,
        }
        if r.generated_text is not None and r.generated_text != r.text:
            entry["generated_text"] = r.generated_text
        return entry
    if isinstance(r, records.ToolCall):
        return {
            **base,
            "kind": "tool_call",
            "name": r.name,
            "call_id": r.call_id,
            "arguments": r.arguments,
        }
    if isinstance(r, records.ToolResult):
        return {
            **base,
            "kind": "tool_result",
            "name": r.name,
            "call_id": r.call_id,
            "output": r.output if not r.is_error else (r.exception or r.output),
            "is_error": r.is_error,
        }
    if isinstance(r, records.Handoff):
        new = _agent_label(r.new_agent_name, r.new_agent_id)
        old = _agent_label(r.old_agent_name, r.old_agent_id)
        # LiveKit records the first agent's start as a handoff from no agent
        return {
            **base,
            "kind": "handoff",
            "name": new,
            "text": f"{old or '(session start)'} -> {new or '(unknown agent)'}",
        }
    if isinstance(r, records.ErrorRecord):
        return {**base, "kind": "error", "name": r.source, "text": r.message, "is_error": True}
    if isinstance(r, records.Notice):
        return {**base, "kind": "notice", "name": r.code, "text": r.message}
    if isinstance(r, records.Gap):
        return {**base, "kind": "gap", "text": f"{r.count} records lost: {r.reason}"}
    if isinstance(r, records.RecordingNotice):
        said = (
            "said in full" if r.completed else ("spoken over" if r.spoken_over else "not completed")
        )
        return {**base, "kind": "notice", "name": r.kind, "text": f"recording notice {said}"}
    if isinstance(r, records.RecordingFailed):
        return {**base, "kind": "gap", "name": r.kind, "text": f"recording failed: {r.reason}"}
    if isinstance(r, records.Opened):
        return {**base, "kind": "opened", "name": r.agent_name}
    if isinstance(r, records.Closed):
        return {**base, "kind": "closed", "text": r.reason, "is_error": r.error is not None}
    if isinstance(r, records.AgentConfigUpdated):
        return {**base, "kind": "agent_config_updated", "text": r.instructions}
    if isinstance(r, records.TranscriptionEnabled):
        return {**base, "kind": "transcription_enabled", "name": r.transcription_model}
    return None


def _merge_timing(into: dict[str, Any], r: records.TurnTiming) -> None:
    for f in _TIMING_VALUES:
        value = getattr(r, f)
        if value is not None:
            into[f] = value
    if r.tokens is not None and "tokens" not in into:
        into["tokens"] = r.tokens
    if r.not_reported:
        reasons = into.setdefault("not_reported", {})
        reasons.update(r.not_reported)


def transcript_entries(opened: Iterable[OpenedRecord]) -> list[TranscriptEntry]:
    """Shape records into transcript entries, in the order things happened (time, then seq).

    turn_timing is folded into the turn it measures rather than listed: by item id, else by
    the provider's response id (a realtime model's own figures, which may arrive before the
    turn's message), else the latest utterance of that role.
    """
    # Plain dicts while timings are folded in; each model is built once at the end.
    entries: list[dict[str, Any]] = []
    by_item: dict[str, int] = {}
    last_of: dict[str, int] = {}
    # (timing record, index it falls back to by role at the time it was recorded)
    pending: list[tuple[records.TurnTiming, int | None]] = []
    for o in opened:
        r = o.record
        if isinstance(r, records.TurnTiming):
            pending.append((r, last_of.get(r.role) if r.role is not None else None))
            continue
        entry = _entry(o, r)
        if entry is None:
            continue
        if entry["kind"] == "user":
            last_of["user"] = len(entries)
        elif entry["kind"] == "agent":
            last_of["assistant"] = len(entries)
        item_id = getattr(r, "item_id", None)
        if isinstance(item_id, str) and item_id:
            by_item[item_id] = len(entries)
        entries.append(entry)

    by_request: dict[str, int] = {}
    resolved: list[tuple[records.TurnTiming, int | None, int | None]] = []
    for r, fallback in pending:
        target = by_item.get(r.item_id) if r.item_id else None
        if target is None and r.speech_id:
            target = by_item.get(r.speech_id)
        if target is not None and r.request_id:
            by_request[r.request_id] = target
        resolved.append((r, target, fallback))
    timings: dict[int, dict[str, Any]] = {}
    for r, target, fallback in resolved:
        if target is None and r.request_id:
            target = by_request.get(r.request_id)
        if target is None:
            target = fallback
        if target is not None:
            _merge_timing(timings.setdefault(target, {}), r)

    out = []
    for i, e in enumerate(entries):
        if i in timings:
            e["timing"] = Timing(**timings[i])
        out.append(TranscriptEntry(**e))
    out.sort(key=lambda e: (e.at, e.seq))
    return out


# --- evidence bundles ------------------------------------------------------------------------
#
# A bundle is one JSON document: session metadata, the decrypted records, the sealed chain rows
# (hex) and the verification result, plus a ``signature`` member. The service signs the
# document's canonical bytes with its Ed25519 key (the checkpoint key, `auditagent keys
# public`), so that any edit of any field — the readable text included, which the chain alone
# cannot tie to its ciphertext without the data key — breaks the signature. The canonical
# bytes need nothing of ours to reproduce (see ``BUNDLE_CANONICAL``).

BUNDLE_SIGNATURE_ALG: Final = "Ed25519"
BUNDLE_CANONICAL: Final = (
    "the bundle with its `signature` member removed, as JSON with object keys sorted, no "
    "whitespace, every non-ASCII character escaped as \\uXXXX (lowercase hex, UTF-16 pairs), "
    "numbers in their shortest round-trip form: exactly Python's "
    "json.dumps(doc, sort_keys=True, separators=(',', ':'), ensure_ascii=True, "
    "allow_nan=False) encoded as ASCII"
)
BUNDLE_HOW_TO_CHECK: Final = (
    'Without auditagent: (1) python3 -c "import json,sys; d=json.load(open(sys.argv[1])); '
    "d.pop('signature'); sys.stdout.write(json.dumps(d, sort_keys=True, separators=(',', ':'), "
    'ensure_ascii=True, allow_nan=False))" bundle.json > canonical.json; (2) sha256sum '
    "canonical.json must print `canonical_sha256`; (3) `value` is an Ed25519 signature over "
    "canonical.json by `public_key` (raw 32 bytes, base64): compare public_key with the one the "
    "service publishes (`auditagent keys public`); with OpenSSL 3: pub.pem is the PEM of the DER "
    "bytes 302a300506032b6570032100 followed by the 32 key bytes, sig.bin the base64-decoded "
    "value, then openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in canonical.json "
    "-sigfile sig.bin. (4) The chain: hash_n = SHA-256('auditagent/chain/v1\\0' || prev_hash || "
    "length-prefixed session id, seq, kind, key_id, tenant, at (microseconds), nonce, "
    "ciphertext), from 32 zero bytes, ending at session.head_hash after session.event_count "
    "records. `parts` (signed on its own by `parts_value`) holds a short SHA-256 of every part "
    "so a verifier can say which part changed; it adds nothing to what `value` proves."
)


def canonical_json(doc: Any) -> bytes:
    """The canonical bytes of a JSON value, as described in ``BUNDLE_CANONICAL``."""
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats (which JSON cannot carry) as the strings "NaN",
    "Infinity", "-Infinity"; everything else unchanged."""
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def _short(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()[:16]


def _record_fields(item: Any) -> dict[str, str]:
    fields = {k: _short(item.get(k)) for k in ("seq", "at", "kind")}
    record = item.get("record")
    if isinstance(record, dict):
        for k, v in record.items():
            fields[f"record.{k}"] = _short(v)
    else:
        fields["record"] = _short(record)
    return fields


def bundle_parts(doc: dict[str, Any]) -> dict[str, Any]:
    """Short digests of every part of a bundle, so a verifier can name what changed."""
    session = doc.get("session")
    return {
        "members": {
            k: _short(v) for k, v in doc.items() if k not in ("signature", "records", "chain")
        },
        "session": (
            {k: _short(v) for k, v in session.items()} if isinstance(session, dict) else {}
        ),
        "records": [_record_fields(r) if isinstance(r, dict) else {} for r in doc["records"]],
        "chain": [_short(r) for r in doc["chain"]],
    }


def sign_bundle(doc: dict[str, Any], signing_key: bytes) -> dict[str, Any]:
    """``doc`` (JSON-ready: strings, numbers, lists, dicts) with its ``signature`` member."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    canonical = canonical_json(body)
    public = crypto.signing_public_key(signing_key)
    parts = bundle_parts(body)
    body["signature"] = {
        "algorithm": BUNDLE_SIGNATURE_ALG,
        "public_key": base64.b64encode(public).decode("ascii"),
        "key_id": _key_id(public),
        "canonicalization": BUNDLE_CANONICAL,
        "canonical_sha256": hashlib.sha256(canonical).hexdigest(),
        "value": base64.b64encode(crypto.sign(signing_key, canonical)).decode("ascii"),
        "parts": parts,
        "parts_value": base64.b64encode(crypto.sign(signing_key, canonical_json(parts))).decode(
            "ascii"
        ),
        "how_to_check": BUNDLE_HOW_TO_CHECK,
    }
    return body


def _key_id(public: bytes) -> str:
    # The C2SP signed-note key id the checkpoints use, so both name the key alike.
    return hashlib.sha256(b"auditagent\n\x01" + public).digest()[:4].hex()


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
    problems: tuple[str, ...] = ()
    """Every finding, most telling first (``reason`` is the first)."""


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


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64") from None


def _signature_findings(doc: dict[str, Any], public_key: bytes) -> list[str]:
    """What is wrong with the bundle's signature, naming the parts that changed."""
    sig = doc.get("signature")
    if not isinstance(sig, dict):
        return ["the bundle is not signed: its readable text is not bound to anything"]
    try:
        if sig.get("algorithm") != BUNDLE_SIGNATURE_ALG:
            raise ValueError(f"unknown signature algorithm {sig.get('algorithm')!r}")
        claimed = _b64(sig.get("public_key"), "signature.public_key")
        value = _b64(sig.get("value"), "signature.value")
    except ValueError as exc:
        return [f"malformed signature: {exc}"]
    if claimed != public_key:
        return [
            f"signed by another key (key id {_key_id(claimed)}); the trusted key is "
            f"{_key_id(public_key)}: not an export of this service, or re-signed after an edit"
        ]
    body = {k: v for k, v in doc.items() if k != "signature"}
    try:
        canonical = canonical_json(body)
    except ValueError:
        return ["the bundle holds a value JSON cannot carry (NaN/Infinity): edited"]
    if crypto.verify_signature(public_key, canonical, value):
        return []
    # The document does not match its signature: say where, from the separately signed
    # digests of its parts when those are intact.
    parts = sig.get("parts")
    try:
        parts_ok = isinstance(parts, dict) and crypto.verify_signature(
            public_key, canonical_json(parts), _b64(sig.get("parts_value"), "parts_value")
        )
    except ValueError:
        parts_ok = False
    if not parts_ok or not isinstance(parts, dict):
        return [
            "the bundle does not match its signature (edited after export; its part digests "
            "were altered too, so the edit cannot be located)"
        ]
    found = _diff_parts(parts, bundle_parts(body), body)
    return found or ["the bundle does not match its signature (edited after export)"]


def _diff_parts(signed: dict[str, Any], now: dict[str, Any], body: dict[str, Any]) -> list[str]:
    out: list[str] = []
    tail = "differs from the signed export"
    for group, label in (("members", "field `{}`"), ("session", "session field `{}`")):
        a, b = signed.get(group) or {}, now.get(group) or {}
        for k in sorted(set(a) | set(b)):
            if k not in b:
                out.append(f"{label.format(k)} was removed (it is in the signed export)")
            elif k not in a:
                out.append(f"{label.format(k)} was added (not in the signed export)")
            elif a[k] != b[k]:
                out.append(f"{label.format(k)} {tail}")
    records = body.get("records") or []
    a_recs, b_recs = signed.get("records") or [], now.get("records") or []
    if len(a_recs) != len(b_recs):
        out.append(f"records: {len(b_recs)} in the bundle, {len(a_recs)} were signed")
    for i, (a, b) in enumerate(zip(a_recs, b_recs, strict=False)):
        if a == b:
            continue
        seq = records[i].get("seq") if isinstance(records[i], dict) else None
        where = f"record seq {seq}" if isinstance(seq, int) else f"record #{i}"
        names = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        out.append(f"{where}: {', '.join(f'`{n}`' for n in names)} {tail}")
    a_chain, b_chain = signed.get("chain") or [], now.get("chain") or []
    if len(a_chain) != len(b_chain):
        out.append(f"chain: {len(b_chain)} rows in the bundle, {len(a_chain)} were signed")
    for i, (a, b) in enumerate(zip(a_chain, b_chain, strict=False)):
        if a != b:
            out.append(f"chain row #{i} {tail}")
    return out


def check_bundle(doc: Any, *, public_key: bytes | None = None) -> BundleCheck:
    """Verify an exported bundle offline, without any data key.

    With ``public_key`` (the service's, from `auditagent keys public`): the Ed25519 signature
    over the whole document must verify, which binds every field, the decrypted text
    included; when it does not, each part that changed is named. Always: the chain is
    recomputed from the hex rows and held to the stated count and head, and each decrypted
    record's seq, kind and time must match its sealed chain row.
    """
    sid = "?"
    try:
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if doc.get("format") != BUNDLE_FORMAT:
            raise ValueError("not an auditagent evidence bundle")
        if doc.get("version") not in (1, BUNDLE_VERSION):
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
        if not isinstance(recs, list):
            raise ValueError("records is not a list")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        why = f"malformed bundle: {exc}"
        return BundleCheck(False, sid, 0, None, why, (why,))
    problems: list[str] = []
    first_bad: int | None = None
    if public_key is not None:
        problems += _signature_findings(doc, public_key)
    # The session's stated (event_count, head_hash) act as a checkpoint, as in the database
    # verifier: a row cut from the end of the bundle is caught there.
    result = chain.verify(rows, expected_count=stated_count or None, expected_head=head)
    if not result.ok:
        first_bad = result.first_bad_seq
        where = f"first bad seq {first_bad}: " if first_bad is not None else ""
        problems.append(f"chain: {where}{result.reason}")
    by_seq = {r.seq: r for r in rows}
    for rec in recs:
        seq = rec.get("seq") if isinstance(rec, dict) else None
        row = by_seq.get(seq) if isinstance(seq, int) else None
        if row is None or not isinstance(rec, dict):
            problems.append(f"decrypted record {seq!r} does not match the chain (no such row)")
            first_bad = (
                first_bad if first_bad is not None else (seq if isinstance(seq, int) else None)
            )
            continue
        diffs = []
        if rec.get("kind") != row.kind:
            diffs.append("`kind`")
        try:
            if datetime.fromisoformat(str(rec.get("at"))) != row.at:
                diffs.append("`at`")
        except ValueError:
            diffs.append("`at`")
        if diffs:
            problems.append(
                f"decrypted record seq {seq}: {', '.join(diffs)} does not match the chain "
                "(its sealed row)"
            )
            if first_bad is None:
                first_bad = seq
    if problems:
        return BundleCheck(False, sid, result.events, first_bad, problems[0], tuple(problems))
    return BundleCheck(True, sid, result.events, None, None)


def load_bundle(data: bytes) -> Any:
    return json.loads(data)
