"""What every retention action checks first: the floor, the signed change log, the tenant;
the errors it refuses with; the signing key."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Engine

from ..errors import AuditagentError, Conflict, NotFound
from ..integrity.ledgers import Signer
from ..integrity.signed_logs import verify_changes
from ..keys import KeyProvider
from ..period import RetentionPeriod
from ..settings import Settings

if TYPE_CHECKING:
    from ..integrity.checkpoints import CheckpointSink


log = logging.getLogger("auditagent.retention")

DEFAULT_BATCH_SIZE = 10_000

HoldScope = Literal["session", "participant", "tenant"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def signer_for(key_provider: KeyProvider) -> Signer:
    """Deletion records and change-log entries are signed with the checkpoint key."""
    return Signer.from_private(key_provider.signing_key())


# --- errors -----------------------------------------------------------------------------------


class PolicyBelowFloor(AuditagentError):
    """A policy (or the default) would keep records for less than the configured floor."""

    def __init__(self, keep: RetentionPeriod | int, floor: RetentionPeriod | int) -> None:
        keep = keep if isinstance(keep, RetentionPeriod) else RetentionPeriod(days=keep)
        floor = floor if isinstance(floor, RetentionPeriod) else RetentionPeriod(days=floor)
        super().__init__(
            f"{keep} is below the retention floor of {floor.describe()}",
            fix="keep records at least as long as AUDITAGENT_RETENTION_FLOOR_DAYS/_MONTHS/_YEARS "
            "(the floor is an operator setting, not a per-policy choice)",
        )
        self.keep = keep
        self.floor = floor


class ClockAhead(AuditagentError):
    """A run's clock is later than the database's: it would delete early."""

    def __init__(self, now: datetime, db_now: datetime) -> None:
        super().__init__(
            f"the run's clock ({now.isoformat()}) is later than the database's "
            f"({db_now.isoformat()}); a run never deletes ahead of time",
            fix="omit --now (use it only to look back, or to plan with --dry-run)",
        )


class MatchesNothing(NotFound):
    """A hold or an erasure that covers no session."""


class UnknownTenant(NotFound):
    def __init__(self, tenant: str) -> None:
        super().__init__(
            f"no tenant {tenant!r}: it has no sessions, policies or API keys",
            fix="check the tenant name",
        )


class RetentionRefused(Conflict):
    """The proof retention builds on does not verify, so nothing is deleted."""


def check_floor(settings: Settings) -> None:
    """Refuse a default retention under the floor (the settings validator already does; this
    guards settings built another way)."""
    if not settings.retention_default.covers(settings.retention_floor):
        raise PolicyBelowFloor(settings.retention_default, settings.retention_floor)


def tampered_tenants(
    engine: Engine, signer: Signer, settings: Settings, tenant: str | None
) -> dict[str, list[str]]:
    """Tenants whose policies or holds disagree with the signed change log. A log that does
    not verify itself, or a problem with ``tenant`` (the one tenant this run or erasure is
    for), refuses the whole run; otherwise the caller leaves those tenants alone."""
    log_ = verify_changes(engine, public_key=signer.public, floor=settings.retention_floor)
    problems = log_.problems if not log_.log_ok else log_.tenants.get(tenant or "", [])
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RetentionRefused(
            f"retention refused: {problems[0]}{more}",
            fix="nothing was deleted; investigate with `auditagent verify --all --checkpoints DIR`",
        )
    return log_.tenants


def note_changes(engine: Engine, keys: KeyProvider, sink: CheckpointSink | None) -> str | None:
    """Sign the change log's new head into ``sink`` (best effort: the change itself is made
    and signed already; a missing note only narrows what a later truncation would show)."""
    if sink is None:
        return None
    from ..integrity import checkpoints

    try:
        return checkpoints.write_changes_checkpoint(engine, keys, sink)
    except Exception as exc:
        log.error(
            "retention: the change-log checkpoint was not written (%s); run "
            "`auditagent checkpoint write`",
            type(exc).__name__,
        )
        return None


def load_keys(settings: Settings) -> KeyProvider:
    from ..keys import load_key_provider

    return load_key_provider(settings)
