"""Erasure of one participant (GDPR Art. 17)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from ..errors import AuditagentError, Conflict
from ..keys import KeyProvider
from ..settings import Settings
from ..store import holds as hold_store
from ..store import locks, purge_rows, sessions
from ..store.holds import Hold
from ..store.purges import SessionHeld
from .execute import execute_run
from .guards import DEFAULT_BATCH_SIZE, MatchesNothing, UnknownTenant, signer_for, tampered_tenants
from .report import RunReport

if TYPE_CHECKING:
    from ..integrity.checkpoints import CheckpointSink


class ErasureBlocked(Conflict):
    """A legal hold covers the participant, one of their sessions, or their tenant."""

    def __init__(self, holds: list[Hold]) -> None:
        self.holds = holds
        first = holds[0]
        super().__init__(
            f"erasure blocked by legal hold {first.id} (scope {first.scope}, placed by "
            f"{first.created_by} at {first.created_at.isoformat()})"
            + (f" and {len(holds) - 1} more" if len(holds) > 1 else ""),
            fix="the hold must be released before the participant can be erased",
        )


def erase_participant(
    engine: Engine,
    key_provider: KeyProvider,
    *,
    settings: Settings,
    tenant: str,
    participant: str,
    reason: str,
    requested_by: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    allow_empty: bool = False,
    sink: CheckpointSink | None = None,
) -> RunReport:
    """Crypto-shred, then purge, every session of ``participant`` in ``tenant``.

    Refuses with ``ErasureBlocked`` (naming the hold) while a hold covers any of it, with
    ``UnknownTenant`` for a tenant that does not exist, and with ``MatchesNothing`` when the
    participant has no session left unless ``allow_empty`` (erasing again is then a no-op).
    Sessions still open are shredded too: records written to them afterwards can never be
    read, and the next retention run deletes them. Rerunning finishes an interrupted erasure.
    Ends with a signed global checkpoint."""
    if not reason.strip():
        raise AuditagentError("an erasure needs a reason", fix="pass --reason / reason")
    if not sessions.tenant_known(engine, tenant):
        raise UnknownTenant(tenant)
    index = key_provider.blind_index(tenant=tenant, value=participant)
    holds = hold_store.holds_blocking_participant(engine, tenant=tenant, participant_index=index)
    if holds:
        raise ErasureBlocked(holds)
    candidates = sessions.participant_sessions(engine, tenant=tenant, participant_index=index)
    if not candidates and not allow_empty:
        raise MatchesNothing(
            f"the erasure matches no session: this participant has none left in tenant "
            f"{tenant!r} (already erased, a mistyped identity, or the wrong keyring?)",
            fix="check the identity and AUDITAGENT_KEYRING_PATH, or pass --allow-empty / "
            "allow_empty",
        )
    signer = signer_for(key_provider)
    tampered_tenants(engine, signer, settings, tenant)
    report = RunReport(
        run_id=None,
        dry_run=False,
        now=locks.db_clock(engine),
        candidates=candidates,
        tenant=tenant,
    )
    try:
        execute_run(
            engine,
            settings,
            report,
            keys=key_provider,
            signer=signer,
            reason="erasure",
            trigger="erasure",
            requested_by=requested_by,
            run_reason=reason,
            batch_size=batch_size,
            max_batches=max_batches,
            progress=None,
            sink=sink,
            stop_on_held=True,
        )
    except SessionHeld:
        raise ErasureBlocked(
            hold_store.holds_blocking_participant(engine, tenant=tenant, participant_index=index)
        ) from None
    if report.complete:
        _sweep_late_rows(engine, report, batch_size=batch_size)
    return report


def _sweep_late_rows(engine: Engine, report: RunReport, *, batch_size: int) -> None:
    """Rows a live recorder wrote to a session while it was being erased."""
    for c in report.candidates:
        while purge_rows.events_left(engine, c.session_id):
            n = purge_rows.delete_event_batch(engine, c.session_id, batch_size=batch_size)
            report.events_deleted += n
            if n == 0:
                break
        if purge_rows.mark_purged(engine, c.session_id):
            report.sessions_deleted += 1
