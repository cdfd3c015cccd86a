"""`/v1/sessions`: list, detail, transcript, events, verify, export.

Every handler writes its access-log row before it reads anything it returns; a row that cannot
be written turns the read into a 503 (fail closed).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.background import BackgroundTask

from auditagent.integrity import chain_verifier
from auditagent.reading import bundle, decrypt, transcript
from auditagent.store import reader
from auditagent.store.reader import SessionFilter

from ..audio_reads import export_audio, transcript_audio, with_audio
from ..deps import AccessDep, KeysDep, scope_tenant
from ..problems import problem_responses
from ..reads import commitment as _commitment
from ..reads import integrity_report, participant_filter
from ..reads import logged_session as _logged_session
from ..reads import logged_session_records as _logged_session_records
from ..reads import read_verified as _read_verified
from ..reads import verify as _verify
from ..reads import verify_report as _verify_report
from ..schemas import (
    SAFE_TEXT,
    BundleSession,
    ChainRow,
    EventItem,
    EventList,
    EvidenceBundle,
    IsoDatetime,
    LegalHold,
    SessionDetail,
    SessionPage,
    SessionSummary,
    Transcript,
    TranscriptIntegrity,
    VerifyReport,
)
from .erased import erased_verify_report

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
log = logging.getLogger("auditagent.api")

_READ_ERRORS = problem_responses(401, 403, 404, 422, 503)
_DECRYPT_ERRORS = problem_responses(401, 403, 404, 409, 410, 422, 503)

SessionId = Annotated[uuid.UUID, "session id"]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _summary(row: Any) -> SessionSummary:
    return SessionSummary(
        id=row.id,
        tenant=row.tenant,
        started_at=row.started_at,
        ended_at=row.ended_at,
        status=row.status,
        close_reason=row.close_reason,
        architecture=row.architecture,
        agent_name=row.agent_name,
        labels=dict(row.labels or {}),
        tool_names=list(row.tool_names or []),
        models=dict(row.models or {}),
        event_count=row.event_count,
        notice=row.notice,
    )


ExportAudio = Annotated[bool, Query(description="Include the call's recording (base64 Ogg)")]
Text128 = Annotated[str, Query(min_length=1, max_length=128, pattern=SAFE_TEXT)]
Text256 = Annotated[str, Query(min_length=1, max_length=256, pattern=SAFE_TEXT)]


@router.get("", response_model=SessionPage, responses=_READ_ERRORS)
def list_sessions(
    access: AccessDep,
    keys: KeysDep,
    tenant: Text128 | None = None,
    started_from: Annotated[
        IsoDatetime | None, Query(alias="from", description="started_at >= from")
    ] = None,
    started_to: Annotated[
        IsoDatetime | None, Query(alias="to", description="started_at < to")
    ] = None,
    agent: Annotated[
        str | None,
        Query(min_length=1, max_length=256, pattern=SAFE_TEXT, description="agent name or label"),
    ] = None,
    architecture: Literal["pipeline", "realtime", "hybrid"] | None = None,
    participant: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=256,
            pattern=SAFE_TEXT,
            description="exact participant identity (matched through the keyed blind index; "
            "needs a tenant)",
        ),
    ] = None,
    tool: Text256 | None = None,
    close_reason: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=SAFE_TEXT)
    ] = None,
    notice: Annotated[
        Literal["completed", "missing"] | None,
        Query(description="`missing`: sessions without a recording notice heard in full"),
    ] = None,
    cursor: Annotated[
        str | None, Query(pattern=reader.CURSOR_PATTERN, description="`next_cursor` of a page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=reader.MAX_PAGE)] = 50,
) -> SessionPage:
    """Session metadata, newest first. Nothing is decrypted."""
    scope = scope_tenant(access.principal, tenant)
    participant_index, participant_indexes = participant_filter(
        access.conn, keys, scope=scope, participant=participant
    )
    start, end = _utc(started_from), _utc(started_to)
    filters = SessionFilter(
        tenant=scope,
        started_from=start,
        started_to=end,
        agent=agent,
        architecture=architecture,
        participant_index=participant_index,
        participant_indexes=participant_indexes,
        tool=tool,
        close_reason=close_reason,
        notice=notice,
    )
    if cursor:
        reader.decode_cursor(cursor)  # reject a bad cursor before it is logged as a read
    # Log which filters were used, never their values: a participant identity is personal data.
    used = sorted(
        name
        for name, value in (
            ("from", start),
            ("to", end),
            ("agent", agent),
            ("architecture", architecture),
            ("participant", participant),
            ("tool", tool),
            ("close_reason", close_reason),
            ("notice", notice),
            ("cursor", cursor),
        )
        if value is not None
    )
    access.record("sessions.list", tenant=scope, detail={"filters": used})
    page = reader.list_sessions(access.conn, filters=filters, limit=limit, cursor=cursor or None)
    return SessionPage(items=[_summary(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/{session_id}", response_model=SessionDetail, responses=_READ_ERRORS)
def get_session(session_id: uuid.UUID, access: AccessDep, keys: KeysDep) -> SessionDetail:
    """Metadata, record counts by kind, chain integrity and unreleased legal holds."""
    session = _logged_session(access, session_id, "sessions.get")
    conn = access.conn
    counts = reader.event_counts(conn, session_id)
    integrity = integrity_report(access, keys, session)
    holds = reader.holds_for_session(conn, session)
    return SessionDetail(
        **_summary(session).model_dump(),
        head_hash=bytes(session.head_hash).hex() if session.head_hash is not None else None,
        counts=counts,
        integrity=integrity,
        legal_holds=[
            LegalHold(
                id=h.id,
                scope=h.scope,
                reason=h.reason,
                created_by=h.created_by,
                created_at=h.created_at,
            )
            for h in holds
        ],
    )


def _integrity(result: chain_verifier.VerifyResult) -> TranscriptIntegrity:
    return TranscriptIntegrity(
        ok=result.ok, first_bad_seq=result.first_bad_seq, reason=result.reason
    )


@router.get(
    "/{session_id}/transcript",
    response_model=Transcript,
    # an entry carries only the fields that apply to its kind (see TranscriptEntry)
    response_model_exclude_unset=True,
    responses=_DECRYPT_ERRORS,
)
def get_transcript(session_id: uuid.UUID, access: AccessDep, keys: KeysDep) -> Response:
    """The conversation, decrypted on read, in the order things happened (time, then seq):
    utterances, tool calls and results, handoffs, errors, notices, each turn with the
    latencies measured for it. An entry carries only the fields that apply to its kind."""
    session, prefetched = _logged_session_records(access, session_id, "sessions.transcript")
    opened, result = _read_verified(access, keys, session, prefetched)
    # Serialized straight from the entries' dicts: the bytes `Transcript(...)` would give with
    # exclude_unset (tests/reading/test_transcript.py holds them equal), without building
    # ~2,000 models, dumping them and validating them again on the way out.
    entries = transcript.transcript_entry_dicts(opened)
    body = transcript.transcript_json(
        session_id,
        entries,
        {"ok": result.ok, "first_bad_seq": result.first_bad_seq, "reason": result.reason},
        audio=_audio_block(session_id, opened),
    )
    # Freeing ~2,000 records and ~1,000 entries takes a few milliseconds: done after the body
    # is sent (in the thread pool), not between the handler's return and the response.
    held: list[Any] = [opened, entries]
    return Response(
        content=body, media_type="application/json", background=BackgroundTask(held.clear)
    )


def _event_items(opened: list[decrypt.OpenedRecord]) -> list[EventItem]:
    return [
        EventItem(
            seq=o.seq,
            at=o.at,
            kind=o.kind,
            record=bundle.json_safe(o.record.model_dump(mode="json")),
        )
        for o in opened
    ]


@router.get("/{session_id}/events", response_model=EventList, responses=_DECRYPT_ERRORS)
def get_events(session_id: uuid.UUID, access: AccessDep, keys: KeysDep) -> EventList:
    """Every record of the session, decrypted, in seq order, with the chain's integrity checked
    in the same pass exactly as `/transcript` reports it."""
    session, prefetched = _logged_session_records(access, session_id, "sessions.events")
    opened, result = _read_verified(access, keys, session, prefetched)
    return EventList(
        session_id=session_id, events=_event_items(opened), integrity=_integrity(result)
    )


@router.get("/{session_id}/verify", response_model=VerifyReport, responses=_READ_ERRORS)
def verify_session(session_id: uuid.UUID, access: AccessDep, keys: KeysDep) -> VerifyReport:
    """Recompute the session's hash chain (no key needed) and compare it with the count and
    head hash stored for the session, which catches a deleted last record, and with the
    session's signed checkpoint outside the database when it has one. An erased session
    reports `erased: true` with its signed deletion record; it is ok when that record
    verifies and accounts for the session."""
    session = _logged_session(access, session_id, "sessions.verify")
    erased = erased_verify_report(access.engine, access.conn, keys, session)
    if erased is not None:
        return erased
    result = _verify(access.conn, session, _commitment(access, keys, session_id))
    return with_audio(_verify_report(session_id, result), access.conn, keys, session)


@router.get(
    "/{session_id}/export",
    response_model=EvidenceBundle,
    responses=_DECRYPT_ERRORS,
)
def export_session(
    session_id: uuid.UUID, access: AccessDep, keys: KeysDep, audio: ExportAudio = False
) -> Response:
    """A self-contained evidence bundle: metadata, decrypted records, the sealed chain rows in
    hex and the verification result, signed as a whole with the service's Ed25519 key (the
    key `auditagent keys public` prints). `auditagent verify --bundle FILE --public-key K`
    checks it offline and names any part edited since; `signature.how_to_check` says what a
    recipient can check without auditagent."""
    detail = {"audio": True} if audio else None
    session = _logged_session(access, session_id, "sessions.export", detail=detail)
    conn = access.conn
    rows = list(reader.iter_events(conn, session_id))
    c = _commitment(access, keys, session_id)
    seen: dict[int, bytes] = {}
    if c is not None and c.count > 0:
        seen = {r.seq: bytes(r.hash) for r in rows if r.seq == c.count - 1}
    result = chain_verifier.hold_to_commitments(
        chain_verifier.verify(
            rows,
            expected_count=session.event_count or None,
            expected_head=(
                bytes(session.head_hash)
                if session.event_count and session.head_hash is not None
                else None
            ),
        ),
        status=session.status,
        checkpoint=c.expected if c is not None else None,
        head_at_checkpoint=seen.get(c.count - 1) if c is not None else None,
        problem=c.problem if c is not None else None,
    )
    sealer = decrypt.session_sealer(keys, reader.get_data_key(conn, session_id), session)
    opened = list(decrypt.open_records(sealer, rows))
    # The JSON values signed are exactly the ones served: built once, signed, dumped.
    doc: dict[str, Any] = {
        "format": bundle.BUNDLE_FORMAT,
        "version": bundle.BUNDLE_VERSION,
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "exported_by": access.principal.name,
        "session": BundleSession(
            **_summary(session).model_dump(),
            head_hash=bytes(session.head_hash).hex() if session.head_hash is not None else None,
        ).model_dump(mode="json"),
        "records": [i.model_dump(mode="json") for i in _event_items(opened)],
        "chain": [ChainRow(**bundle.chain_row_json(r)).model_dump(mode="json") for r in rows],
        "verification": _verify_report(session_id, result).model_dump(mode="json"),
    }
    if audio:
        doc["audio"] = export_audio(conn, sealer, session_id)
    signed = bundle.sign_bundle(doc, keys.signing_key())
    return Response(
        content=json.dumps(signed, ensure_ascii=True, allow_nan=False).encode("ascii"),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="auditagent-session-{session_id}.json"'
        },
    )


def _audio_block(
    session_id: uuid.UUID, opened: list[decrypt.OpenedRecord]
) -> dict[str, Any] | None:
    """The transcript's ``audio`` block as JSON-ready values, or None for a session without
    a recording (the field then stays unset, as in the model dumped with exclude_unset)."""
    found = transcript_audio(session_id, opened).get("audio")
    return found.model_dump(mode="json", exclude_unset=True) if found is not None else None
