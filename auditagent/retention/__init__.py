"""Retention policies, legal holds, erasure (GDPR Art. 17) and retention runs.

A run is planned, then executed. The plan lists the sessions whose end time plus their policy
(or the default) — never less than the floor, in calendar terms — lies before the run's clock
(the database's own clock; a clock ahead of it is refused) and that no unreleased legal hold
covers. Executing a plan deletes at most those sessions, each in separate committed
transactions:

1. **shred** — under the hold lock, re-check the hold and that the session is still due (end
   time unchanged since the plan and confirmed by its chained close record, the policy in
   force, the floor), append its deletion record — hash-chained, carrying that basis and the
   real time of deletion, signed with the checkpoint key — destroy the wrapped data key and
   mark the session ``shredded``; from here on its ciphertext is unreadable everywhere;
2. **delete** its events in batches of ``batch_size`` rows (the only path the append-only
   trigger lets through);
3. **mark** it ``purged``.

Each step is idempotent, so a run that is interrupted anywhere is finished by running again:
``shredded`` sessions are always picked up, and so are rows that reached a ``purged`` session
afterwards. A run holds a lock for its lifetime; a run whose process died (SIGKILL) is marked
``interrupted`` by the next one. Every run and erasure ends with a signed global checkpoint.

Policy and hold changes are signed entries of a change log; a run refuses to start while the
policy and hold tables disagree with it. All SQL lives in :mod:`auditagent.store` (one module
per table); the checks are in :mod:`auditagent.retention_proof`.

Modules: ``guards`` (floor, change log, errors, signing key), ``policies``, ``holds``, ``run``
(plan and execute), ``execute`` (per-session steps), ``report``, ``erase``, ``adopt``.
"""

from __future__ import annotations

from ..errors import Conflict as Conflict  # importable as before the split
from ..integrity.ledgers import Signer as Signer
from ..integrity.ledgers import deletion_record_hash
from ..integrity.signed_logs import DeletionChainResult, verify_deletion_chain
from ..period import RetentionPeriod
from ..store.deletions import DeletionRecord
from ..store.holds import Hold
from ..store.policies import Policy
from ..store.purges import Candidate
from ..store.purges import SessionHeld as SessionHeld
from .adopt import Adopted as Adopted
from .adopt import adopt_legacy
from .erase import ErasureBlocked, erase_participant
from .guards import (
    DEFAULT_BATCH_SIZE,
    ClockAhead,
    HoldScope,
    MatchesNothing,
    PolicyBelowFloor,
    RetentionRefused,
    UnknownTenant,
    check_floor,
    signer_for,
)
from .guards import log as log
from .guards import note_changes as note_changes
from .guards import utcnow as utcnow
from .holds import create_hold, release_hold
from .policies import remove_policy, set_policy
from .report import Progress as Progress
from .report import RunInterrupted as RunInterrupted
from .report import RunReport
from .run import execute_plan, plan_retention, run_retention

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Candidate",
    "ClockAhead",
    "DeletionChainResult",
    "DeletionRecord",
    "ErasureBlocked",
    "Hold",
    "HoldScope",
    "MatchesNothing",
    "Policy",
    "PolicyBelowFloor",
    "RetentionPeriod",
    "RetentionRefused",
    "RunReport",
    "UnknownTenant",
    "adopt_legacy",
    "check_floor",
    "create_hold",
    "deletion_record_hash",
    "erase_participant",
    "execute_plan",
    "plan_retention",
    "release_hold",
    "remove_policy",
    "run_retention",
    "set_policy",
    "signer_for",
    "verify_deletion_chain",
]
