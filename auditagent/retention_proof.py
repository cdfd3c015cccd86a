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

import base64
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from sqlalchemy import Engine

from . import crypto
from .chain import GENESIS
from .period import RetentionPeriod
from .store import retention as store
from .store.retention import (
    CHANGE_SIGNATURE_LABEL,
    Change,
    DeletionRecord,
    canonical_json,
    change_hash,
    parse_ts,
    signature_valid,
    ts,
)

__all__ = [
    "CERTIFICATE_FORMAT",
    "ChangeLogResult",
    "DeletionChainResult",
    "DeletionReport",
    "certificate",
    "check_certificate",
    "deletion_report",
    "verify_changes",
    "verify_deletion_chain",
    "verify_retention",
]

CERTIFICATE_FORMAT: Final = "auditagent-deletion-certificate"
CERTIFICATE_VERSION = 1
_CERTIFICATE_LABEL = b"auditagent/deletion-certificate/v1\0"


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
            adopted = store.adopted_deletions(conn, public_key)
    return check_deletion_chain(
        store.iter_deletion_records(engine), keep=keep, public_key=public_key, adopted=adopted
    )


def check_deletion_chain(
    records: Iterable[DeletionRecord],
    *,
    keep: set[int] | None = None,
    public_key: bytes | None = None,
    adopted: tuple[int, bytes] | None = None,
) -> DeletionChainResult:
    prev = GENESIS
    expected_seq = 0
    kept: dict[int, bytes] = {}

    def bad(seq: int, reason: str) -> DeletionChainResult:
        return DeletionChainResult(False, expected_seq, prev, seq, reason, kept)

    for r in records:
        if r.seq != expected_seq:
            return bad(expected_seq, f"deletion record {expected_seq} missing")
        if r.prev_hash != prev:
            return bad(r.seq, "deletion record prev_hash mismatch")
        digest = r.recomputed_hash()
        if digest != r.hash:
            return bad(r.seq, "deletion record altered (hash mismatch)")
        if adopted is not None and r.seq == adopted[0] - 1 and digest != adopted[1]:
            return bad(r.seq, "deletion record differs from what was adopted")
        legacy = adopted is not None and r.seq < adopted[0] and r.signature is None
        if public_key is not None and not legacy and not r.signed_by(public_key):
            return bad(
                r.seq,
                "deletion record not signed by the checkpoint key (forged, or written "
                "outside auditagent)",
            )
        prev = digest
        if keep is not None and r.seq in keep:
            kept[r.seq] = digest
        expected_seq += 1
    return DeletionChainResult(True, expected_seq, prev, None, None, kept)


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
            if c.action == store.ADOPT_DELETIONS:
                try:
                    return int(c.body["count"]), bytes.fromhex(str(c.body["head"]))
                except (KeyError, TypeError, ValueError):
                    return None
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
    prev = GENESIS
    for c in store.iter_changes(engine):
        where = f"change log entry {c.seq}"
        if c.seq != result.count:
            result.problems.append(f"change log entry {result.count} missing")
            break
        if c.prev_hash != prev:
            result.problems.append(f"{where}: prev_hash mismatch")
            break
        digest = change_hash(
            prev_hash=c.prev_hash,
            seq=c.seq,
            at=c.at,
            action=c.action,
            tenant=c.tenant,
            subject=c.subject,
            actor=c.actor,
            body=c.body,
        )
        if digest != c.hash:
            result.problems.append(f"{where}: altered (hash mismatch)")
            break
        if not signature_valid(public_key, CHANGE_SIGNATURE_LABEL, digest, c.signature):
            result.problems.append(
                f"{where}: not signed by the checkpoint key (forged, or written outside auditagent)"
            )
            break
        prev = digest
        result.count += 1
        result.changes.append(c)
        if keep is not None and c.seq in keep:
            result.hashes[c.seq] = digest
    result.head = prev
    if result.problems:
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
    for p in store.all_policy_rows(engine):
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
    for h in store.all_hold_rows(engine):
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
    for r in store.iter_deletion_records(engine):
        if chain.first_bad_seq is not None and r.seq >= chain.first_bad_seq:
            break
        for p in basis_problems(r, changes):
            report.problems.append(f"deletion record {r.seq} (session {r.session_id}): {p}")
    for k in store.key_anomalies(engine):
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
    for sid, n in store.purged_with_rows(engine):
        report.problems.append(
            f"session {sid}: {n} records written after it was erased are still stored; "
            "`auditagent retention run` deletes them"
        )
    for sid, ended, closed in store.end_time_anomalies(engine):
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


# --- the examiner's report and certificate ------------------------------------------------------


@dataclass
class DeletionEntry:
    record: DeletionRecord
    problems: list[str]

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass
class DeletionReport:
    generated_at: datetime
    tenant: str | None
    start: datetime | None
    end: datetime | None
    entries: list[DeletionEntry]
    runs: list[Any]
    chain: DeletionChainResult
    changes: ChangeLogResult

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.changes.ok and all(e.valid for e in self.entries)


def deletion_report(
    engine: Engine,
    *,
    public_key: bytes,
    tenant: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    after_seq: int | None = None,
    limit: int | None = None,
) -> DeletionReport:
    """Deletion records (deleted in [start, end), of ``tenant``) with their basis and whether
    each verifies, the runs they came from, and the state of both chains."""
    chain = verify_deletion_chain(engine, public_key=public_key)
    changes = verify_changes(engine, public_key=public_key)
    records = store.deletion_records_between(
        engine, tenant=tenant, start=start, end=end, after_seq=after_seq, limit=limit
    )
    entries = []
    for r in records:
        problems = record_problems(r, changes, public_key)
        if chain.first_bad_seq is not None and r.seq >= chain.first_bad_seq:
            problems.append(f"the chain is broken at seq {chain.first_bad_seq}: {chain.reason}")
        entries.append(DeletionEntry(r, problems))
    run_ids = sorted({r.run_id for r in records if r.run_id is not None}, key=str)
    runs = store.list_runs(engine, ids=run_ids) if run_ids else []
    return DeletionReport(
        generated_at=datetime.now(timezone.utc),
        tenant=tenant,
        start=start,
        end=end,
        entries=entries,
        runs=runs,
        chain=chain,
        changes=changes,
    )


def record_json(entry: DeletionEntry) -> dict[str, Any]:
    r = entry.record
    return {
        "seq": r.seq,
        "run_id": str(r.run_id) if r.run_id else None,
        "session_id": str(r.session_id),
        "tenant": r.tenant,
        "policy": r.policy,
        "reason": r.reason,
        "event_count": r.event_count,
        "final_hash": r.final_hash.hex() if r.final_hash else None,
        "deleted_at": ts(r.deleted_at),
        "basis": r.basis,
        "prev_hash": r.prev_hash.hex(),
        "hash": r.hash.hex(),
        "signature": base64.b64encode(r.signature).decode() if r.signature else None,
        "valid": entry.valid,
        "problems": entry.problems,
    }


def run_json(run: Any) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "trigger": run.trigger,
        "tenant": run.tenant,
        "status": run.status,
        "started_at": ts(run.started_at),
        "finished_at": ts(run.finished_at) if run.finished_at else None,
        "requested_by": run.requested_by,
        "reason": run.reason,
        "sessions_matched": int(run.sessions_matched),
        "sessions_deleted": int(run.sessions_deleted),
        "events_deleted": int(run.events_deleted),
        "sessions_skipped_held": int(run.sessions_skipped_held),
        "errors": int(run.errors),
    }


def report_json(report: DeletionReport, *, change_log_problems: bool = True) -> dict[str, Any]:
    return {
        "generated_at": ts(report.generated_at),
        "filters": {
            "tenant": report.tenant,
            "from": ts(report.start) if report.start else None,
            "to": ts(report.end) if report.end else None,
        },
        "deletion_records": [record_json(e) for e in report.entries],
        "runs": [run_json(r) for r in report.runs],
        "deletion_chain": {
            "ok": report.chain.ok,
            "count": report.chain.count,
            "head": report.chain.head.hex(),
            "first_bad_seq": report.chain.first_bad_seq,
            "reason": report.chain.reason,
        },
        "change_log": {
            "ok": report.changes.ok,
            "count": report.changes.count,
            "head": report.changes.head.hex(),
            "problems": report.changes.problems if change_log_problems else [],
        },
        "valid": report.ok,
    }


def _key_id(public_key: bytes) -> str:
    from .checkpoints import key_id

    return base64.b64encode(key_id(public_key)).decode()


def certificate(
    report: DeletionReport,
    signer: store.Signer,
    *,
    generated_by: str,
    change_log_problems: bool = True,
) -> dict[str, Any]:
    """The report as a signed bundle: ``body`` (canonical JSON) signed with the checkpoint key;
    every deletion record inside also carries its own signature. ``change_log_problems=False``
    leaves out problem lines that name other tenants' policies and holds."""
    body = {
        **report_json(report, change_log_problems=change_log_problems),
        "generated_by": generated_by,
    }
    digest = hashlib.sha256(canonical_json(body)).digest()
    return {
        "format": CERTIFICATE_FORMAT,
        "version": CERTIFICATE_VERSION,
        "body": body,
        "signature": {
            "alg": "Ed25519",
            "key_id": _key_id(signer.public),
            "public_key": base64.b64encode(signer.public).decode(),
            "sha256": digest.hex(),
            "value": base64.b64encode(signer.sign(_CERTIFICATE_LABEL + digest)).decode(),
        },
    }


@dataclass(frozen=True)
class CertificateCheck:
    ok: bool
    reason: str | None
    records: int
    runs: int


def check_certificate(doc: Mapping[str, Any], public_key: bytes) -> CertificateCheck:
    """Check a certificate offline against a trusted public key (not the one it carries): the
    bundle signature over its body and each deletion record's own hash and signature."""
    try:
        if doc.get("format") != CERTIFICATE_FORMAT or doc.get("version") != CERTIFICATE_VERSION:
            return CertificateCheck(False, "not an auditagent deletion certificate", 0, 0)
        body = doc["body"]
        sig = doc["signature"]
        records = body["deletion_records"]
        runs = body["runs"]
        digest = hashlib.sha256(canonical_json(body)).digest()
        value = base64.b64decode(sig["value"], validate=True)
        if not crypto.verify_signature(public_key, _CERTIFICATE_LABEL + digest, value):
            return CertificateCheck(
                False, "the certificate is not signed by this key (or was edited)", 0, 0
            )
        for r in records:
            record = DeletionRecord(
                seq=int(r["seq"]),
                run_id=uuid.UUID(r["run_id"]) if r["run_id"] else None,
                session_id=uuid.UUID(r["session_id"]),
                tenant=r["tenant"],
                policy=r["policy"],
                reason=r["reason"],
                event_count=int(r["event_count"]),
                final_hash=bytes.fromhex(r["final_hash"]) if r["final_hash"] else None,
                deleted_at=parse_ts(r["deleted_at"]),
                prev_hash=bytes.fromhex(r["prev_hash"]),
                hash=bytes.fromhex(r["hash"]),
                basis=r["basis"],
                signature=base64.b64decode(r["signature"]) if r["signature"] else None,
            )
            if record.recomputed_hash() != record.hash or not record.signed_by(public_key):
                return CertificateCheck(
                    False, f"deletion record {record.seq} does not verify", len(records), len(runs)
                )
    except (KeyError, TypeError, ValueError, AttributeError):
        return CertificateCheck(False, "the certificate is malformed", 0, 0)
    if not body.get("valid", False):
        return CertificateCheck(
            False,
            "the certificate is authentic but reports problems (see body.deletion_records)",
            len(records),
            len(runs),
        )
    return CertificateCheck(True, None, len(records), len(runs))
