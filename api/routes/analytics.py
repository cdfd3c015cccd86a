"""`/v1/analytics/latency`: p50/p95 latencies per architecture from real turn_timing records.

This decrypts (timings live inside sealed records), so it is access-logged like a transcript
read, tenant-scoped, and bounded by `max_sessions`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from auditagent import records
from auditagent.reading import decrypt
from auditagent.store import reader

from ..deps import AccessDep, KeysDep, scope_tenant
from ..problems import problem_responses
from ..schemas import SAFE_TEXT, IsoDatetime, LatencyGroup, LatencyReport, LatencyStat

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

METRICS = (
    "transcription_delay",
    "end_of_utterance_delay",
    "llm_ttft",
    "tts_ttfb",
    "realtime_ttft",
    "e2e_latency",
)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _once_per_measurement(
    timings: list[records.TurnTiming],
) -> tuple[int, dict[str, list[float]]]:
    """A session's values per metric, each measurement counted once.

    A pipeline turn's end of utterance, transcription delay, LLM and TTS first token are
    reported twice by LiveKit: in ``metrics_collected`` (deprecated) and in the turn's
    ``ChatMessage.metrics``, and both are recorded. The chat message is LiveKit's per-turn
    figure, so for each metric a session's chat-message values are used when it has any, and
    the metrics events' values only otherwise. Returns how many timing records contributed
    (the turns measured) and the values.
    """
    from_chat: dict[str, list[tuple[int, float]]] = defaultdict(list)
    from_events: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for i, r in enumerate(timings):
        into = from_chat if r.source == "chat_message" else from_events
        for m in METRICS:
            v = getattr(r, m)
            if v is not None and math.isfinite(v):
                into[m].append((i, float(v)))
    used: set[int] = set()
    out: dict[str, list[float]] = {}
    for m in METRICS:
        chosen = from_chat.get(m) or from_events.get(m) or []
        used.update(i for i, _ in chosen)
        out[m] = [v for _, v in chosen]
    return len(used), out


def _utc(v: datetime | None) -> datetime | None:
    if v is None:
        return None
    return v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v


@router.get(
    "/latency",
    response_model=LatencyReport,
    responses=problem_responses(401, 403, 422, 503),
)
def latency(
    access: AccessDep,
    keys: KeysDep,
    group_by: Literal["architecture", "agent"] = "architecture",
    tenant: Annotated[str | None, Query(min_length=1, max_length=128, pattern=SAFE_TEXT)] = None,
    started_from: Annotated[IsoDatetime | None, Query(alias="from")] = None,
    started_to: Annotated[IsoDatetime | None, Query(alias="to")] = None,
    max_sessions: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> LatencyReport:
    """Per group: p50 and p95 of STT finalization, end of utterance, LLM first token, TTS first
    audio, realtime first audio and end-to-end latency, over the newest `max_sessions`."""
    scope = scope_tenant(access.principal, tenant)
    start, end = _utc(started_from), _utc(started_to)
    with access.engine.connect() as conn:
        sessions = reader.sessions_for_analytics(
            conn, tenant=scope, started_from=start, started_to=end, max_sessions=max_sessions + 1
        )
    truncated = len(sessions) > max_sessions
    sessions = sessions[:max_sessions]
    access.record(
        "analytics.latency",
        tenant=scope,
        detail={"group_by": group_by, "sessions": len(sessions)},
    )
    values: dict[str | None, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    session_count: dict[str | None, int] = defaultdict(int)
    turns: dict[str | None, int] = defaultdict(int)
    scanned = unreadable = erased = 0
    missing_keys: set[str] = set()
    with access.engine.connect() as conn:
        for s in sessions:
            key = s.architecture if group_by == "architecture" else s.agent_name
            # Sessions that cannot be read are left out of the figures but never silently:
            # the report counts them and names the master keys this keyring lacks.
            try:
                sealer = decrypt.session_sealer(keys, reader.get_data_key(conn, s.id), s)
                opened = list(decrypt.open_records(sealer, reader.timing_events(conn, s.id)))
            except decrypt.KeyShredded:
                erased += 1
                continue
            except decrypt.DataKeyUnavailable as exc:
                unreadable += 1
                missing_keys.add(exc.master_key_id)
                continue
            except decrypt.RecordUnreadable:
                unreadable += 1
                continue
            scanned += 1
            session_count[key] += 1
            counted, session_values = _once_per_measurement(
                [o.record for o in opened if isinstance(o.record, records.TurnTiming)]
            )
            turns[key] += counted
            for m, vs in session_values.items():
                values[key][m].extend(vs)
    groups = []
    for key in sorted(session_count, key=lambda k: (k is None, k or "")):
        stats = {}
        for m in METRICS:
            vs = sorted(values[key][m])
            stats[m] = LatencyStat(count=len(vs), p50=percentile(vs, 0.5), p95=percentile(vs, 0.95))
        groups.append(
            LatencyGroup(key=key, sessions=session_count[key], turns=turns[key], metrics=stats)
        )
    return LatencyReport(
        group_by=group_by,
        sessions_scanned=scanned,
        sessions_unreadable=unreadable,
        unreadable_master_keys=sorted(missing_keys),
        sessions_erased=erased,
        truncated=truncated,
        groups=groups,
    )
