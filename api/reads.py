"""Reads shared by the review API's handlers and the review UI's pages: one way to find a
visible session, check its integrity and decrypt it, so the UI has no second path.

Nothing here writes the access log; every caller writes its row before it returns anything
these read.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection

from auditagent.integrity import chain_verifier, checkpoints
from auditagent.keys import KeyProvider
from auditagent.reading import decrypt
from auditagent.store import access_log, reader
from auditagent.store.access_log import AccessEntry

from .deps import AccessContext, can_see
from .problems import ProblemError
from .routes.erased import erased_verify_report
from .schemas import VerifyReport

__all__ = [
    "commitment",
    "integrity_report",
    "logged_session",
    "logged_session_records",
    "participant_filter",
    "read_verified",
    "verify",
    "verify_report",
    "visible_session",
]

log = logging.getLogger("auditagent.api")


def verify_report(session_id: uuid.UUID, result: chain_verifier.VerifyResult) -> VerifyReport:
    return VerifyReport(
        session_id=session_id,
        ok=result.ok,
        events=result.events,
        first_bad_seq=result.first_bad_seq,
        reason=result.reason,
        head_hash=result.head_hash.hex(),
    )


def commitment(
    access: AccessContext, keys: KeyProvider, session_id: uuid.UUID
) -> checkpoints.SessionCommitment | None:
    """The session's signed close checkpoint(s) in the checkpoint directory, if any: the
    chain is held to them as well as to the sessions row, which a superuser could rewrite."""
    settings = access.settings
    if settings is None:
        return None
    try:
        return checkpoints.session_commitment(
            checkpoints.default_sink(settings), session_id, public_key=keys.signing_public_key()
        )
    except OSError as exc:
        log.warning("checkpoint directory unreadable (%s)", type(exc).__name__)
        return None


def verify(conn: Connection, session: Any, c: checkpoints.SessionCommitment | None) -> Any:
    return reader.verify_session(
        conn,
        session,
        checkpoint=c.expected if c is not None else None,
        problem=c.problem if c is not None else None,
    )


def visible_session(conn: Connection, access: AccessContext, session_id: uuid.UUID) -> Any:
    """The session row, or 404 for an absent one and another tenant's alike."""
    return _check_visible(access, session_id, reader.get_session(conn, session_id))


def _check_visible(access: AccessContext, session_id: uuid.UUID, session: Any | None) -> Any:
    if session is None or not can_see(access.principal, session.tenant):
        # Same answer for "absent" and "another tenant's": ids must not reveal existence. The
        # attempt on another tenant's session is access-logged under that tenant, for its owner.
        raise ProblemError(
            404,
            f"no session {session_id}",
            type_="not-found",
            audit=(
                {"action": "session.denied", "tenant": session.tenant, "session_id": session_id}
                if session is not None
                else None
            ),
        )
    return session


def logged_session(
    access: AccessContext,
    session_id: uuid.UUID,
    action: str,
    *,
    detail: dict[str, Any] | None = None,
) -> Any:
    """:func:`visible_session`, then the access-log row of ``action`` on it committed, as
    every handler of one session starts; the session row is read in the same round trip
    as the access log's lock and head (``store.access_log.append_session_access_on``), and
    a session the caller may not see writes nothing there (the 404 is logged as before)."""
    return _logged(access, session_id, action, detail=detail, records=False)[0]


Prefetched = tuple[Any, Iterator[tuple[Any, ...]]]
"""A session's data key row and sealed rows, read right after its access-log COMMIT."""


def logged_session_records(
    access: AccessContext, session_id: uuid.UUID, action: str
) -> tuple[Any, Prefetched | None]:
    """:func:`logged_session` for a handler that decrypts the whole session: its data key and
    sealed rows come back in the access-log COMMIT's round trip, read after the COMMIT
    (None for a session too long to fetch at once; :func:`read_verified` streams it)."""
    return _logged(access, session_id, action, detail=None, records=True)


def _logged(
    access: AccessContext,
    session_id: uuid.UUID,
    action: str,
    *,
    detail: dict[str, Any] | None,
    records: bool,
) -> tuple[Any, Prefetched | None]:
    if access.db is None:
        session = visible_session(access.conn, access, session_id)
        access.record(action, tenant=session.tenant, session_id=session_id, detail=detail)
        return session, None

    def entry_for(found: Any | None) -> AccessEntry:
        session = _check_visible(access, session_id, found)
        return access.entry(action, tenant=session.tenant, session_id=session_id, detail=detail)

    done = access_log.append_session_access_on(
        access.conn,
        session_id,
        entry_for,
        read_after=reader.key_and_events_statements if records else None,
    )
    if done.after is None:
        return done.session, None
    keys, rows = done.after
    return done.session, (keys[0] if keys else None, iter(rows))


def read_verified(
    access: AccessContext, keys: KeyProvider, session: Any, prefetched: Prefetched | None = None
) -> tuple[list[decrypt.OpenedRecord], chain_verifier.VerifyResult]:
    """Decrypt every record and recompute the chain in one pass, held to the sessions row and
    to the session's signed checkpoint: what `/transcript` and `/events` both report.
    ``prefetched``: the data key and rows :func:`logged_session_records` brought back."""
    key, rows = prefetched or reader.data_key_and_events(
        access.conn, session.id, expected_rows=session.event_count
    )
    sealer = decrypt.session_sealer(keys, key, session)
    c = commitment(access, keys, session.id)
    return decrypt.read_verified(
        sealer,
        session,
        rows,
        checkpoint=c.expected if c is not None else None,
        problem=c.problem if c is not None else None,
    )


def integrity_report(access: AccessContext, keys: KeyProvider, session: Any) -> VerifyReport:
    """The session's integrity exactly as `GET /v1/sessions/{id}` reports it: the chain held
    to the sessions row and the signed checkpoint, or the deletion record of an erased one.
    Reads no content."""
    return erased_verify_report(access.engine, access.conn, keys, session) or verify_report(
        session.id, verify(access.conn, session, commitment(access, keys, session.id))
    )


def participant_filter(
    conn: Connection, keys: KeyProvider, *, scope: str | None, participant: str | None
) -> tuple[bytes | None, tuple[bytes, ...] | None]:
    """``(participant_index, participant_indexes)`` of a session filter for ``participant``.

    The blind index is keyed per tenant, so a tenantless admin's query across tenants matches
    the identity's index under each tenant that has sessions."""
    if participant is None:
        return None, None
    if scope is not None:
        return keys.blind_index(tenant=scope, value=participant), None
    return None, tuple(
        keys.blind_index(tenant=t, value=participant) for t in reader.tenants(conn) if "\0" not in t
    )
