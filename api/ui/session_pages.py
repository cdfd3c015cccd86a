"""`/ui/sessions` and `/ui/sessions/{id}`: the list, one session, its signed export.

Every read is the API's own: its handlers (`api/routes/sessions.py`) and the reads they share
(`api/reads.py`): the same access-log rows, tenant scoping, integrity checks and decryption;
this module only draws what they return.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from auditagent.reading.decrypt import DataKeyUnavailable, KeyShredded, RecordUnreadable
from auditagent.reading.transcript import transcript_entries
from auditagent.store import reader

from ..deps import AccessContext, KeysDep
from ..reads import integrity_report, logged_session_records, read_verified
from ..routes import sessions as api
from ..schemas import SAFE_TEXT, SessionSummary, VerifyReport
from .audio_pages import Player, player
from .auth import UiAccessDep
from .templating import render
from .view import PAUSE_CODES, Item, Waterfall, fmt_models, timeline, waterfall

router = APIRouter(prefix="/ui", include_in_schema=False)

ARCHITECTURES = ("pipeline", "realtime", "hybrid")
NOTICE_STATES = ("missing", "completed")
"""The API's ``notice`` filter: ``missing`` is every session without a notice heard in full
(none asked for, or never completed)."""
SCAN_MAX = 200
"""At most this many sessions are examined per page when a filter needs more than metadata
(interrupted, gaps or pauses, integrity failing); the page then says where it stopped."""

Opt = Annotated[str | None, Query(max_length=256, pattern=SAFE_TEXT)]


@dataclass
class Row:
    summary: SessionSummary
    integrity: VerifyReport
    counts: dict[str, int]
    flags: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        s = self.summary
        return (s.ended_at - s.started_at).total_seconds() if s.ended_at else None

    @property
    def turns(self) -> int:
        return self.counts.get("user_utterance", 0) + self.counts.get("agent_utterance", 0)

    @property
    def models(self) -> list[str]:
        return fmt_models(self.summary.models)


def _when(value: str | None, what: str, errors: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        errors.append(f"{what}: expected a date and time such as 2026-11-26T09:30")
        return None
    # a browser's datetime-local field has no zone; the page shows UTC, so it means UTC
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _content_flags(
    access: AccessContext, keys: Any, session: Any, counts: dict[str, int], used: list[str]
) -> set[str]:
    """Interrupted / paused live inside sealed records: read them the API's way, logged
    first, and only when the plaintext kinds say there is something to find."""
    if not (counts.get("agent_utterance") or counts.get("user_utterance") or counts.get("notice")):
        return set()
    access.record(
        "sessions.scan", tenant=session.tenant, session_id=session.id, detail={"filters": used}
    )
    try:
        opened, _ = read_verified(access, keys, session)
    except (KeyShredded, RecordUnreadable, DataKeyUnavailable):
        return {"unreadable"}
    found: set[str] = set()
    for o in opened:
        r: Any = o.record
        if o.kind in ("agent_utterance", "user_utterance") and r.interrupted:
            found.add("interrupted")
        elif o.kind == "notice" and r.code in PAUSE_CODES:
            found.add("paused")
    return found


@router.get("/sessions")
def sessions_page(
    request: Request,
    access: UiAccessDep,
    keys: KeysDep,
    tenant: Opt = None,
    started_from: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    started_to: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    agent: Opt = None,
    architecture: Opt = None,
    participant: Opt = None,
    tool: Opt = None,
    close_reason: Opt = None,
    notice: Opt = None,
    interrupted: bool = False,
    gaps: bool = False,
    failing: bool = False,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
) -> Response:
    errors: list[str] = []
    start = _when(started_from, "From", errors)
    end = _when(started_to, "To", errors)
    if architecture and architecture not in ARCHITECTURES:
        errors.append(f"Architecture: one of {', '.join(ARCHITECTURES)}")
    if notice and notice not in NOTICE_STATES:
        errors.append("Recording notice: choose missing or completed, or leave it at any")
    if cursor and not re.match(reader.CURSOR_PATTERN, cursor):
        errors.append("the page position (cursor) is not valid; start from the first page")
    form = {
        "tenant": tenant or "",
        "from": started_from or "",
        "to": started_to or "",
        "agent": agent or "",
        "architecture": architecture or "",
        "participant": participant or "",
        "tool": tool or "",
        "close_reason": close_reason or "",
        "notice": notice or "",
        "interrupted": interrupted,
        "gaps": gaps,
        "failing": failing,
    }
    ctx: dict[str, Any] = {"form": form, "architectures": ARCHITECTURES, "errors": errors}
    if errors:
        return render(request, "sessions.html", {**ctx, "rows": [], "next": None}, status=422)
    used = [n for n, v in (("interrupted", interrupted), ("gaps", gaps), ("failing", failing)) if v]

    def page(cur: str | None, n: int) -> Any:
        return api.list_sessions(
            access,
            keys,
            tenant=tenant or None,
            started_from=start,
            started_to=end,
            agent=agent or None,
            architecture=architecture or None,  # type: ignore[arg-type]
            participant=participant or None,
            tool=tool or None,
            close_reason=close_reason or None,
            notice=notice or None,  # type: ignore[arg-type]
            cursor=cur,
            limit=n,
        )

    rows: list[Row] = []
    examined = 0
    next_cursor: str | None = None
    cur = cursor or None
    while True:
        result = page(cur, limit if not used else 50)
        stopped = False
        for i, s in enumerate(result.items):
            examined += 1
            row = _row(access, keys, s, used)
            if _matches(row, interrupted=interrupted, gaps=gaps, failing=failing):
                rows.append(row)
            last_of_all = i == len(result.items) - 1 and result.next_cursor is None
            if (len(rows) >= limit or (used and examined >= SCAN_MAX)) and not last_of_all:
                next_cursor = reader.encode_cursor(s.started_at, s.id)
                stopped = True
                break
        if stopped or not used or result.next_cursor is None:
            if not stopped and not used:
                next_cursor = result.next_cursor
            break
        cur = result.next_cursor
    ctx.update(
        rows=rows,
        next=next_cursor,
        examined=examined,
        scanned=bool(used),
        scan_cut=bool(used) and examined >= SCAN_MAX and next_cursor is not None,
        first_page=cursor is None,
    )
    return render(request, "sessions.html", ctx)


def _row(access: AccessContext, keys: Any, s: SessionSummary, used: list[str]) -> Row:
    session = reader.get_session(access.conn, s.id)
    counts = reader.event_counts(access.conn, s.id)
    integrity = integrity_report(access, keys, session)
    row = Row(summary=s, integrity=integrity, counts=counts)
    if counts.get("gap"):
        row.flags.append("gaps")
    if "interrupted" in used or "gaps" in used:
        row.flags.extend(sorted(_content_flags(access, keys, session, counts, used)))
    return row


def _matches(row: Row, *, interrupted: bool, gaps: bool, failing: bool) -> bool:
    if interrupted and "interrupted" not in row.flags:
        return False
    if gaps and not {"gaps", "paused"} & set(row.flags):
        return False
    return not (failing and row.integrity.ok)


@router.get("/sessions/{session_id}")
def session_page(
    request: Request, session_id: uuid.UUID, access: UiAccessDep, keys: KeysDep
) -> Response:
    detail = api.get_session(session_id, access, keys)  # 404 for another tenant's, logged
    session, prefetched = logged_session_records(access, session_id, "sessions.transcript")
    problem: str | None = None
    erased = False
    items: list[Item] = []
    chart: Waterfall | None = None
    participant: str | None = None
    read_ok: bool | None = None
    read_reason: str | None = None
    audio: Player | None = None
    try:
        opened, result = read_verified(access, keys, session, prefetched)
    except KeyShredded:
        erased = True
    except (RecordUnreadable, DataKeyUnavailable) as exc:
        problem = str(exc)
    else:
        entries = transcript_entries(opened)
        items = timeline(entries, detail.started_at)
        chart = waterfall(entries, detail.architecture)
        read_ok, read_reason = result.ok, result.reason
        audio = player(access, keys, session, opened, detail.integrity)
        first = opened[0].record if opened else None
        # Only roles allowed to see identities get one: admins (auditors see sessions only).
        if access.principal.is_admin and first is not None and first.kind == "opened":
            participant = getattr(first, "participant", None)
    return render(
        request,
        "session.html",
        {
            "s": detail,
            "duration": (detail.ended_at - detail.started_at).total_seconds()
            if detail.ended_at
            else None,
            "models": fmt_models(detail.models),
            "items": items,
            "chart": chart,
            "erased": erased or detail.integrity.erased,
            "problem": problem,
            "participant": participant,
            "read_ok": read_ok,
            "read_reason": read_reason,
            "labels": dict(detail.labels),
            "audio": audio,
        },
    )


@router.get("/sessions/{session_id}/export")
def export_page(session_id: uuid.UUID, access: UiAccessDep, keys: KeysDep) -> Response:
    """The API's signed evidence bundle, as a download."""
    return api.export_session(session_id, access, keys)
