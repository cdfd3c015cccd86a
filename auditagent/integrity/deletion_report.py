"""What an examiner asks for about deletions: the report of what was deleted and why, and
its signed certificate."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from sqlalchemy import Engine

from auditagent.integrity import crypto
from auditagent.integrity.checkpoints.note import key_id as note_key_id
from auditagent.integrity.deletion_basis import record_problems
from auditagent.integrity.encoding import CERTIFICATE_LABEL, canonical_json, parse_ts, ts
from auditagent.integrity.ledgers import Signer
from auditagent.integrity.signed_logs import (
    ChangeLogResult,
    DeletionChainResult,
    verify_changes,
    verify_deletion_chain,
)
from auditagent.store import deletions
from auditagent.store import runs as store_runs
from auditagent.store.deletions import DeletionRecord

CERTIFICATE_FORMAT: Final = "auditagent-deletion-certificate"
CERTIFICATE_VERSION = 1
_CERTIFICATE_LABEL = CERTIFICATE_LABEL

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
    records = deletions.deletion_records_between(
        engine, tenant=tenant, start=start, end=end, after_seq=after_seq, limit=limit
    )
    entries = []
    for r in records:
        problems = record_problems(r, changes, public_key)
        if chain.first_bad_seq is not None and r.seq >= chain.first_bad_seq:
            problems.append(f"the chain is broken at seq {chain.first_bad_seq}: {chain.reason}")
        entries.append(DeletionEntry(r, problems))
    run_ids = sorted({r.run_id for r in records if r.run_id is not None}, key=str)
    runs = store_runs.list_runs(engine, ids=run_ids) if run_ids else []
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
    """A deletion record as the report and its certificate carry it, with its check."""
    return {**deletion_record_json(entry.record), "valid": entry.valid, "problems": entry.problems}


def deletion_record_json(r: DeletionRecord) -> dict[str, Any]:
    """A deletion record's fields as JSON: hashes hex, signature base64, time as hashed."""
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
    return base64.b64encode(note_key_id(public_key)).decode()


def certificate(
    report: DeletionReport,
    signer: Signer,
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
