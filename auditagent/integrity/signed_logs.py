"""Verifying retention's two signed logs with nothing but the database and the checkpoint
public key: the deletion-record chain, and the change log (``retention_changes``) with
``retention_policies`` and ``legal_holds`` held to what it says."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from auditagent.integrity.chain import GENESIS
from auditagent.integrity.ledgers import (
    CHANGE_MESSAGES,
    DELETION_MESSAGES,
    LedgerVerifier,
)
from auditagent.period import RetentionPeriod
from auditagent.store import changes as store_changes
from auditagent.store import deletions, holds, policies
from auditagent.store.changes import Change
from auditagent.store.deletions import DeletionRecord

# --- the deletion-record chain ----------------------------------------------------------------


@dataclass(frozen=True)
class DeletionChainResult:
    ok: bool
    count: int
    head: bytes
    first_bad_seq: int | None
    reason: str | None
    hashes: dict[int, bytes]


def verify_deletion_chain(
    engine: Engine, *, keep: set[int] | None = None, public_key: bytes | None = None
) -> DeletionChainResult:
    """Recompute every deletion record's hash and link and, given the checkpoint
    ``public_key``, check its signature (records written before signed retention pass when an
    operator adopted them: ``auditagent retention adopt``); ``keep`` names seqs whose hash to
    return (the checkpoint verifier compares them with signed heads)."""
    adopted = None
    if public_key is not None:
        with engine.connect() as conn:
            adopted = store_changes.adopted_deletions(conn, public_key)
    return check_deletion_chain(
        deletions.iter_deletion_records(engine), keep=keep, public_key=public_key, adopted=adopted
    )


def check_deletion_chain(
    records: Iterable[DeletionRecord],
    *,
    keep: set[int] | None = None,
    public_key: bytes | None = None,
    adopted: tuple[int, bytes] | None = None,
) -> DeletionChainResult:
    verifier = LedgerVerifier(DELETION_MESSAGES, keep=keep)
    for r in records:

        def as_adopted(digest: bytes, r: DeletionRecord = r) -> str | None:
            if adopted is not None and r.seq == adopted[0] - 1 and digest != adopted[1]:
                return "deletion record differs from what was adopted"
            return None

        legacy = adopted is not None and r.seq < adopted[0] and r.signature is None
        signed = None
        if public_key is not None and not legacy:

            def signed(digest: bytes, r: DeletionRecord = r, key: bytes = public_key) -> bool:
                return r.signed_by(key)

        ok = verifier.add(
            seq=r.seq,
            prev_hash=r.prev_hash,
            stored_hash=r.hash,
            recompute=r.recomputed_hash,
            check=as_adopted,
            signed=signed,
        )
        if not ok:
            break
    res = verifier.result()
    return DeletionChainResult(
        res.ok, res.count, res.head, res.first_bad_seq, res.reason, res.hashes
    )


# --- the change log ---------------------------------------------------------------------------


@dataclass
class ChangeLogResult:
    ok: bool = True
    count: int = 0
    head: bytes = GENESIS
    problems: list[str] = field(default_factory=list)
    hashes: dict[int, bytes] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    """The entries that verified, in order (up to the first bad one)."""
    tenants: dict[str, list[str]] = field(default_factory=dict)
    """Problems with one tenant's policies or holds (the rest are the log's own)."""

    @property
    def log_ok(self) -> bool:
        """The log itself verifies (its tables may still disagree with it)."""
        return len(self.problems) == sum(len(v) for v in self.tenants.values())

    def _add(self, tenant: str, problem: str) -> None:
        self.problems.append(problem)
        self.tenants.setdefault(tenant, []).append(problem)

    def policy_versions(self) -> dict[uuid.UUID, dict[str, Any]]:
        return {
            c.subject: c.body
            for c in self.changes
            if c.action in ("policy.set", "policy.delete", "policy.adopt")
        }

    @property
    def adopted_deletions(self) -> tuple[int, bytes] | None:
        """The unsigned (pre-0017) deletion records an operator vouched for, if any."""
        for c in reversed(self.changes):
            if c.action == store_changes.ADOPT_DELETIONS:
                return c.adoption()
        return None

    def holds_at(self, position: int) -> dict[uuid.UUID, dict[str, Any]]:
        """Holds placed and not released among the first ``position`` entries."""
        active: dict[uuid.UUID, dict[str, Any]] = {}
        for c in self.changes[:position]:
            if c.action in ("hold.create", "hold.adopt"):
                active[c.subject] = c.body
            elif c.action == "hold.release":
                active.pop(c.subject, None)
        return active


def verify_changes(
    engine: Engine,
    *,
    public_key: bytes,
    keep: set[int] | None = None,
    floor: RetentionPeriod | None = None,
    compare_tables: bool = True,
) -> ChangeLogResult:
    """Verify the change log (links, hashes, signatures) and hold ``retention_policies`` and
    ``legal_holds`` to it. ``floor`` adds "under the floor" to a policy found outside it."""
    result = ChangeLogResult()
    verifier = LedgerVerifier(CHANGE_MESSAGES, keep=keep)
    for c in store_changes.iter_changes(engine):

        def signed(digest: bytes, c: Change = c) -> bool:
            return c.signed_by(public_key)

        if not verifier.add(
            seq=c.seq,
            prev_hash=c.prev_hash,
            stored_hash=c.hash,
            recompute=c.recomputed_hash,
            signed=signed,
        ):
            break
        result.changes.append(c)
    log = verifier.result()
    result.count, result.head, result.hashes = log.count, log.head, log.hashes
    if log.reason is not None:
        result.problems.append(log.reason)
        result.ok = False
    if compare_tables:
        for tenant, problem in _policy_table_problems(engine, result, floor):
            result._add(tenant, problem)
        for tenant, problem in _hold_table_problems(engine, result):
            result._add(tenant, problem)
        result.ok = not result.problems
    return result


def _policy_label(tenant: str, agent: str | None, version: int) -> str:
    return f"retention policy tenant={tenant} agent={agent or '*'} version {version}"


def _policy_table_problems(
    engine: Engine, log: ChangeLogResult, floor: RetentionPeriod | None
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    signed = log.policy_versions()
    seen: set[uuid.UUID] = set()
    for p in policies.all_policy_rows(engine):
        label = _policy_label(p.tenant, p.agent, p.version)
        body = signed.get(p.id)
        if body is None:
            short = (
                f", and {p.period} is under the floor of {floor.describe()}"
                if floor is not None and not p.deleted and not p.period.covers(floor)
                else ""
            )
            problems.append(
                (
                    p.tenant,
                    f"{label} ({p.period}) is not in the signed change log: inserted outside "
                    f"auditagent{short}",
                )
            )
            continue
        seen.add(p.id)
        if p.body() != {k: body.get(k) for k in p.body()}:
            problems.append(
                (p.tenant, f"{label} differs from its signed change-log entry (edited)")
            )
    for pid, body in signed.items():
        if pid not in seen:
            problems.append(
                (
                    body["tenant"],
                    f"{_policy_label(body['tenant'], body.get('agent'), body['version'])} is in "
                    "the signed change log but missing from retention_policies (deleted)",
                )
            )
    return problems


def _hold_table_problems(engine: Engine, log: ChangeLogResult) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    created: dict[uuid.UUID, dict[str, Any]] = {}
    released: dict[uuid.UUID, dict[str, Any]] = {}
    for c in log.changes:
        if c.action in ("hold.create", "hold.adopt"):
            created[c.subject] = c.body
        elif c.action == "hold.release":
            released[c.subject] = c.body
    seen: set[uuid.UUID] = set()
    for h in holds.all_hold_rows(engine):
        body = created.get(h.id)
        if body is None:
            problems.append(
                (
                    h.tenant,
                    f"legal hold {h.id} ({h.scope}, tenant {h.tenant}) is not in the signed "
                    "change log: inserted outside auditagent",
                )
            )
            continue
        seen.add(h.id)
        if h.body() != body:
            problems.append(
                (h.tenant, f"legal hold {h.id} differs from its signed change-log entry (edited)")
            )
        rel = released.get(h.id)
        if rel is None and h.released_at is not None:
            problems.append(
                (
                    h.tenant,
                    f"legal hold {h.id} is released in legal_holds but not in the signed change "
                    "log (released outside auditagent)",
                )
            )
        elif rel is not None and (h.released_at is None or h.release_body() != rel):
            problems.append(
                (
                    h.tenant,
                    f"legal hold {h.id}: its release differs from the signed change log (edited)",
                )
            )
    for hid, body in created.items():
        if hid not in seen:
            problems.append(
                (
                    body["tenant"],
                    f"legal hold {hid} ({body['scope']}, tenant {body['tenant']}, placed by "
                    f"{body['created_by']}) is in the signed change log but missing from "
                    "legal_holds (deleted)",
                )
            )
    return problems
