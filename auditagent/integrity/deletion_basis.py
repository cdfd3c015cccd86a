"""Checking retention's proof, with nothing but the database and the checkpoint public key.

* The deletion-record chain: seq, links, hashes, and each record's Ed25519 signature (the
  checkpoint key, which never enters the database — a superuser can write rows, not sign
  them).
* The change log (``retention_changes``): the same for every policy and legal-hold change, and
  that ``retention_policies`` and ``legal_holds`` hold exactly what it says (a policy inserted
  by SQL, a hold row deleted or "released" by SQL all show).
* Each deletion's basis: its end time agrees with its chained close record, its expiry is its
  end time plus the policy (or default), never under the floor, in calendar terms and before
  the real time of deletion; the policy version is in the change log; no tenant or session
  hold that the log shows active at that moment covered it.
* The sessions: no data key destroyed without a deletion record (nor restored after one), no
  closed session whose end time contradicts its chain, no rows left under a purged session.

It also builds what an examiner asks for: the deletion report and its signed certificate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import Engine

from auditagent.integrity.chain import GENESIS
from auditagent.integrity.encoding import parse_ts, ts
from auditagent.integrity.signed_logs import (
    ChangeLogResult,
    DeletionChainResult,
    verify_changes,
    verify_deletion_chain,
)
from auditagent.period import RetentionPeriod
from auditagent.store import deletions, sessions
from auditagent.store.deletions import DeletionRecord

# --- each deletion's basis --------------------------------------------------------------------


def basis_problems(record: DeletionRecord, log: ChangeLogResult) -> list[str]:
    """What is wrong with why this record says its session was due (signed records only)."""
    b = record.basis
    if b is None:
        if record.signature is None:
            return []  # adopted from before signed retention (the chain check says so)
        return ["has no basis"]
    out: list[str] = []
    try:
        ended = parse_ts(b["ended_at"]) if b.get("ended_at") else None
        closed = parse_ts(b["closed_at"]) if b.get("closed_at") else None
        holds = b["holds"]
        position = int(holds["changes"])
        if record.reason == "retention":
            floor = RetentionPeriod.from_json(b["floor"])
            policy = b.get("policy")
            keep = (
                RetentionPeriod.from_json(policy["keep"])
                if policy
                else RetentionPeriod.from_json(b["default"])
            )
            expires = parse_ts(b["expires_at"])
            run_clock = parse_ts(b["run_clock"])
            if ended is None:
                out.append("retention deletion without an end time")
            else:
                if closed is None or ended < closed:
                    out.append("end time not confirmed by the session's chained close record")
                want = max(keep.add_to(ended), floor.add_to(ended))
                if want != expires:
                    out.append(
                        f"expiry {ts(expires)} does not follow from its end time, policy and "
                        f"floor ({ts(want)})"
                    )
            if not expires < record.deleted_at:
                out.append(
                    f"deleted at {ts(record.deleted_at)}, before it expired at {ts(expires)}"
                )
            if run_clock > record.deleted_at:
                out.append("the run's clock was ahead of the real time of deletion")
            if policy:
                signed = log.policy_versions().get(uuid.UUID(policy["id"]))
                if signed is None or (
                    signed.get("version") != policy["version"]
                    or RetentionPeriod(
                        signed.get("keep_years", 0),
                        signed.get("keep_months", 0),
                        signed.get("keep_days", 0),
                    )
                    != keep
                ):
                    out.append("names a policy version that is not in the signed change log")
    except (KeyError, TypeError, ValueError):
        return ["basis is malformed"]
    if position > log.count:
        if log.ok:
            out.append(f"hold check refers to change log entry {position - 1}, which is missing")
        return out
    head = log.changes[position - 1].hash if position > 0 else GENESIS
    if head.hex() != holds.get("changes_head"):
        out.append("hold check refers to a change log that was rewritten")
    for hid, hold in log.holds_at(position).items():
        if hold.get("tenant") != record.tenant:
            continue
        if hold.get("scope") == "tenant" or (
            hold.get("scope") == "session" and hold.get("session_id") == str(record.session_id)
        ):
            out.append(f"deleted while legal hold {hid} ({hold.get('scope')}) was active")
    return out


# --- everything -------------------------------------------------------------------------------


@dataclass
class RetentionVerifyReport:
    chain: DeletionChainResult
    changes: ChangeLogResult
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_retention(
    engine: Engine,
    *,
    public_key: bytes,
    floor: RetentionPeriod | None = None,
    deletion_keep: set[int] | None = None,
    changes_keep: set[int] | None = None,
) -> RetentionVerifyReport:
    """Everything this module checks (see its text), as problem lines naming the session,
    record, policy or hold and what is wrong."""
    chain = verify_deletion_chain(engine, keep=deletion_keep, public_key=public_key)
    changes = verify_changes(engine, public_key=public_key, keep=changes_keep, floor=floor)
    report = RetentionVerifyReport(chain=chain, changes=changes)
    if not chain.ok:
        report.problems.append(f"deletion records: {chain.reason} at seq {chain.first_bad_seq}")
    report.problems.extend(changes.problems)
    for r in deletions.iter_deletion_records(engine):
        if chain.first_bad_seq is not None and r.seq >= chain.first_bad_seq:
            break
        for p in basis_problems(r, changes):
            report.problems.append(f"deletion record {r.seq} (session {r.session_id}): {p}")
    for k in sessions.key_anomalies(engine):
        if k.has_record:
            report.problems.append(
                f"session {k.session_id}: has a deletion record but its data key is still "
                "there (restored from a backup?)"
            )
        else:
            what = "has no data key" if k.key == "missing" else "data key destroyed"
            report.problems.append(
                f"session {k.session_id}: {what} without a deletion record (status {k.status})"
            )
    for sid, n in sessions.purged_with_rows(engine):
        report.problems.append(
            f"session {sid}: {n} records written after it was erased are still stored; "
            "`auditagent retention run` deletes them"
        )
    for sid, ended, closed in sessions.end_time_anomalies(engine):
        if ended is None:
            report.problems.append(f"session {sid}: closed without an end time")
        elif closed is None:
            report.problems.append(
                f"session {sid}: closed at {ts(ended)} but has no chained close record"
            )
        else:
            report.problems.append(
                f"session {sid}: ended_at {ts(ended)} is earlier than its chained close record "
                f"({ts(closed)}): the end time was rewritten"
            )
    return report


def record_problems(record: DeletionRecord, log: ChangeLogResult, public_key: bytes) -> list[str]:
    """One record on its own: hash, signature and basis (not its link to the previous)."""
    if record.recomputed_hash() != record.hash:
        return ["altered (hash mismatch)"]
    adopted = log.adopted_deletions
    legacy = adopted is not None and record.seq < adopted[0] and record.signature is None
    if not legacy and not record.signed_by(public_key):
        return ["not signed by the checkpoint key"]
    return basis_problems(record, log)
