"""Legal holds: placed and released with a signed change-log entry, saying what they cover."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from ..errors import AuditagentError, Conflict, NotFound
from ..keys import KeyProvider
from ..store import holds as hold_store
from ..store import sessions
from ..store.holds import Hold
from .guards import HoldScope, MatchesNothing, UnknownTenant, note_changes, signer_for

if TYPE_CHECKING:
    from ..integrity.checkpoints import CheckpointSink


def create_hold(
    engine: Engine,
    key_provider: KeyProvider,
    *,
    scope: HoldScope,
    tenant: str,
    reason: str,
    created_by: str,
    session_id: uuid.UUID | None = None,
    participant: str | None = None,
    allow_empty: bool = False,
    sink: CheckpointSink | None = None,
) -> Hold:
    """Hold one session, one participant (by blind index, so no identity is stored) or a
    whole tenant. A held session survives retention runs and erasure until released.

    The returned hold says how many sessions it covers (``sessions_covered``). A hold on an
    unknown tenant is refused; one that covers no session is refused too unless
    ``allow_empty`` (a participant held before their first call, say)."""
    if not reason.strip():
        raise AuditagentError("a legal hold needs a reason", fix="pass --reason / reason")
    if not sessions.tenant_known(engine, tenant):
        raise UnknownTenant(tenant)
    participant_index: bytes | None = None
    if scope == "session":
        if session_id is None:
            raise AuditagentError("a session hold needs a session id", fix="pass session_id")
        owner = sessions.session_tenant(engine, session_id)
        if owner is None or owner != tenant:
            raise NotFound(f"no session {session_id} in tenant {tenant!r}")
    elif scope == "participant":
        if not participant:
            raise AuditagentError(
                "a participant hold needs the participant identity", fix="pass participant"
            )
        participant_index = key_provider.blind_index(tenant=tenant, value=participant)
    elif scope != "tenant":
        raise AuditagentError(f"unknown hold scope {scope!r}", fix="use session|participant|tenant")
    covered = hold_store.sessions_covered(
        engine,
        scope=scope,
        tenant=tenant,
        session_id=session_id,
        participant_index=participant_index,
    )
    if covered == 0 and not allow_empty:
        what = "this participant" if scope == "participant" else f"tenant {tenant!r}"
        raise MatchesNothing(
            f"the hold would cover no session: {what} has none in tenant {tenant!r} "
            "(a mistyped identity, or the wrong keyring?)",
            fix="check the identity and AUDITAGENT_KEYRING_PATH, or pass --allow-empty / "
            "allow_empty to hold it before any session exists",
        )
    hold = hold_store.create_hold(
        engine,
        signer_for(key_provider),
        scope=scope,
        tenant=tenant,
        session_id=session_id if scope == "session" else None,
        participant_index=participant_index,
        reason=reason,
        created_by=created_by,
    )
    note_changes(engine, key_provider, sink)
    return hold


def release_hold(
    engine: Engine,
    hold_id: uuid.UUID,
    *,
    released_by: str,
    reason: str,
    tenant: str | None,
    key_provider: KeyProvider,
    sink: CheckpointSink | None = None,
) -> Hold:
    """Release a hold (recorded and signed: who, when, why). ``tenant`` limits which holds the
    caller may see; another tenant's hold is reported as missing. The returned hold says how
    many sessions it covered when released."""
    if not reason.strip():
        raise AuditagentError("releasing a hold needs a reason", fix="pass --reason / reason")
    existing = hold_store.get_hold(engine, hold_id)
    if existing is None or (tenant is not None and existing.tenant != tenant):
        raise NotFound(f"no legal hold {hold_id}")
    if existing.released_at is not None:
        raise Conflict(
            f"legal hold {hold_id} was already released at {existing.released_at.isoformat()} "
            f"by {existing.released_by}"
        )
    released = hold_store.release_hold(
        engine, signer_for(key_provider), hold_id, released_by=released_by, reason=reason
    )
    assert released is not None
    note_changes(engine, key_provider, sink)
    return released
