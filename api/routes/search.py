"""`GET /v1/search`: words and phrases in the decrypted text, found through the keyed index.

The access-log row is written first, and keeps the query only as a keyed MAC
(``auditagent.search.query_mac``): equal searches are recognisable, their words are not.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from auditagent.search import QueryError, parse_query, query_mac, search
from auditagent.search.query import MAX_QUERY_CHARS, QUERY_PATTERN
from auditagent.store import reader
from auditagent.store.reader import SessionFilter

from ..deps import AccessDep, KeysDep, scope_tenant
from ..problems import ProblemError, problem_responses
from ..reads import participant_filter
from ..schemas import SAFE_TEXT, IsoDatetime, SearchHit, SearchPage, SearchResult
from .sessions import _summary

router = APIRouter(prefix="/v1/search", tags=["search"])

MAX_LIMIT = 50
Text = Annotated[str, Query(min_length=1, max_length=256, pattern=SAFE_TEXT)]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


@router.get("", response_model=SearchPage, responses=problem_responses(401, 403, 422, 503))
def search_sessions(
    access: AccessDep,
    keys: KeysDep,
    q: Annotated[
        str,
        Query(
            max_length=65_536,
            description='words (all required) and "quoted phrases"; no wildcards. Bad input '
            "is a 422 whose `type` names the rule: query-empty, query-too-long, "
            "query-only-common-words, query-wildcard, query-syntax, query-unbalanced-quote, "
            "query-control-characters. The pattern states the same rules (Python `re` syntax; "
            "`\\W` is Unicode-aware there).",
            # Stated in the schema, enforced (with the rule's name) by parse_query.
            json_schema_extra={
                "pattern": QUERY_PATTERN,
                "minLength": 1,
                "maxLength": MAX_QUERY_CHARS,
            },
        ),
    ],
    tenant: Annotated[str | None, Query(min_length=1, max_length=128, pattern=SAFE_TEXT)] = None,
    role: Annotated[
        Literal["user", "agent", "tool"] | None,
        Query(description="only what the user said, the agent said, or tools did"),
    ] = None,
    started_from: Annotated[
        IsoDatetime | None, Query(alias="from", description="started_at >= from")
    ] = None,
    started_to: Annotated[
        IsoDatetime | None, Query(alias="to", description="started_at < to")
    ] = None,
    agent: Text | None = None,
    architecture: Literal["pipeline", "realtime", "hybrid"] | None = None,
    participant: Text | None = None,
    tool: Text | None = None,
    close_reason: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=SAFE_TEXT)
    ] = None,
    cursor: Annotated[
        str | None, Query(pattern=reader.CURSOR_PATTERN, description="`next_cursor` of a page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
) -> SearchPage:
    """Sessions whose decrypted text holds every word and phrase of `q`, newest first; the
    index only nominates candidates, so no answer is a false positive. Tenant-scoped like the
    session list: a tenantless admin without `tenant` searches every tenant."""
    scope = scope_tenant(access.principal, tenant)
    try:
        query = parse_query(q)
    except QueryError as exc:
        raise ProblemError(422, str(exc), type_=exc.rule, title="Search not accepted") from None
    if cursor:
        reader.decode_cursor(cursor)
    participant_index, participant_indexes = participant_filter(
        access.conn, keys, scope=scope, participant=participant
    )
    filters = SessionFilter(
        started_from=_utc(started_from),
        started_to=_utc(started_to),
        agent=agent,
        architecture=architecture,
        participant_index=participant_index,
        participant_indexes=participant_indexes,
        tool=tool,
        close_reason=close_reason,
    )
    used = sorted(
        name
        for name, value in (
            ("from", started_from),
            ("to", started_to),
            ("agent", agent),
            ("architecture", architecture),
            ("participant", participant),
            ("tool", tool),
            ("close_reason", close_reason),
            ("cursor", cursor),
        )
        if value is not None
    )
    access.record(
        "search",
        tenant=scope,
        detail={
            "query_mac": query_mac(keys, tenant=scope, query=query),
            "clauses": len(query.clauses),
            "role": role,
            "filters": used,
        },
    )
    page = search(
        access.conn,
        keys,
        tenant=scope,
        query=query,
        role=role,
        filters=filters,
        cursor=cursor or None,
        limit=limit,
    )
    return SearchPage(
        items=[
            SearchResult(
                session=_summary(item.session),
                hits=[
                    SearchHit(
                        seq=h.seq,
                        role=h.role,
                        at=h.at,
                        snippet=h.snippet,
                        match_start=h.match_start,
                        match_end=h.match_end,
                    )
                    for h in item.hits
                ],
                hit_count=item.hit_count,
            )
            for item in page.items
        ],
        next_cursor=page.next_cursor,
        examined=page.examined,
    )
