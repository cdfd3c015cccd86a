"""An erased session's answers: 410 with its deletion record for a read, and for `/verify`
``erased: true`` with the record (an erased session is not an integrity failure). Also builds
the separate retention engine when ``AUDITAGENT_RETENTION_DATABASE_URL`` is set.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from auditagent.integrity.deletion_basis import record_problems
from auditagent.integrity.deletion_report import deletion_record_json
from auditagent.integrity.signed_logs import verify_changes
from auditagent.keys import KeyProvider
from auditagent.reading.decrypt import KeyShredded
from auditagent.settings import Settings
from auditagent.store import deletions, sessions

from ..problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE
from ..schemas import DeletionRecordOut, Problem, VerifyReport

__all__ = ["deletion_out", "erased_verify_report", "install"]


def deletion_out(
    r: deletions.DeletionRecord, problems: list[str] | None = None
) -> DeletionRecordOut:
    fields = {**deletion_record_json(r), "deleted_at": r.deleted_at}
    valid = None if problems is None else not problems
    return DeletionRecordOut(**fields, valid=valid, problems=problems or [])


def erased_verify_report(
    engine: Engine, conn: Connection, keys: KeyProvider, session: Any
) -> VerifyReport | None:
    """For a session whose data key is destroyed: ``ok`` when a valid signed deletion record
    accounts for it (an erased session is not an integrity failure), not ok when there is no
    record (the key was destroyed outside auditagent) or the record does not verify. None for
    a session that was not erased: verify its chain instead."""
    if session.status not in ("shredded", "purged") and not sessions.data_key_destroyed(
        conn, session.id
    ):
        return None
    records = deletions.deletion_records_on(conn, session.id)
    if not records:
        return VerifyReport(
            session_id=session.id,
            ok=False,
            events=0,
            first_bad_seq=None,
            reason="erased without a deletion record: its data key was destroyed outside "
            "auditagent",
            head_hash="",
            erased=True,
        )
    record = records[-1]
    public = keys.signing_public_key()
    problems = record_problems(
        record, verify_changes(engine, public_key=public, compare_tables=False), public
    )
    count = int(session.event_count or 0)
    if record.event_count < count:
        problems.append(
            f"the session had {count} records, its deletion record accounts for "
            f"{record.event_count}"
        )
    elif (
        record.event_count == count
        and count > 0
        and session.head_hash is not None
        and record.final_hash != bytes(session.head_hash)
    ):
        problems.append("its deletion record's final hash differs from the session's head")
    return VerifyReport(
        session_id=session.id,
        ok=not problems,
        events=record.event_count,
        first_bad_seq=None,
        reason="; ".join(problems) or None,
        head_hash=record.final_hash.hex() if record.final_hash else "",
        erased=True,
        deletion_record=deletion_out(record, problems),
    )


def install(app: FastAPI, settings: Settings) -> None:
    """An erased session answers 410 with its deletion record (``deletion_record``: null when
    the key was destroyed some other way); a separate retention engine is built when
    ``AUDITAGENT_RETENTION_DATABASE_URL`` is set."""
    previous_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        async with previous_lifespan(app_) as state:
            own: Engine | None = None
            if settings.retention_database_url:
                from auditagent.store.db import make_engine, sqlalchemy_url

                own = await run_in_threadpool(
                    make_engine, settings, url=sqlalchemy_url(settings.retention_database_url)
                )
                app_.state.retention_engine = own
            try:
                yield state
            finally:
                if own is not None:
                    own.dispose()

    app.router.lifespan_context = lifespan

    async def erased(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KeyShredded)
        record: dict[str, Any] | None = None
        raw = request.path_params.get("session_id")
        engine = getattr(request.app.state, "engine", None)
        if raw is not None and engine is not None:
            try:
                sid = uuid.UUID(str(raw))
            except ValueError:
                sid = None
            if sid is not None:
                found = await run_in_threadpool(deletions.deletion_records_for, engine, sid)
                if found:
                    record = deletion_out(found[-1]).model_dump(mode="json")
        body = Problem(
            type=PROBLEM_TYPE_BASE + "erased",
            title=HTTPStatus(410).phrase,
            status=410,
            detail=str(exc),
            instance=request.url.path,
        ).model_dump(exclude_none=True)
        body["deletion_record"] = record
        return JSONResponse(body, status_code=410, media_type=PROBLEM_MEDIA_TYPE)

    app.add_exception_handler(KeyShredded, erased)
