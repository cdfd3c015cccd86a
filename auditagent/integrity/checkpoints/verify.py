"""Holding the database to every checkpoint in a sink."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from auditagent.errors import AuditagentError
from auditagent.integrity import chain_verifier
from auditagent.integrity.checkpoints.note import (
    CHANGES_ORIGIN,
    GLOBAL_ORIGIN,
    MANIFEST_SUFFIX,
    NOTE_SUFFIX,
    Checkpoint,
    CheckpointInvalid,
    manifest_root,
    parse_manifest,
    parse_note,
)
from auditagent.integrity.checkpoints.sink import CheckpointSink
from auditagent.integrity.deletion_basis import verify_retention
from auditagent.keys import KeyProvider
from auditagent.period import RetentionPeriod
from auditagent.store import deletions as store_deletions
from auditagent.store import heads
from auditagent.store import sessions as store_sessions

# --- verifying --------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    checkpoints: int = 0
    checkpoints_valid: int = 0
    sessions: int = 0
    sessions_valid: int = 0
    deletion_records: int = 0
    deletion_chain_ok: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.checkpoints > 0

    def lines(self) -> list[str]:
        out = list(self.problems)
        out.append(
            f"{self.checkpoints_valid}/{self.checkpoints} checkpoints valid, "
            f"{self.sessions_valid}/{self.sessions} sessions consistent, "
            f"deletion chain {'valid' if self.deletion_chain_ok else 'BROKEN'} "
            f"({self.deletion_records} records)"
        )
        if self.checkpoints == 0:
            out.insert(0, "no checkpoints found: nothing outside the database to compare with")
        return out


def verify_checkpoints(
    engine: Engine,
    sink: CheckpointSink,
    *,
    public_key: bytes,
    floor: RetentionPeriod | None = None,
) -> VerifyReport:
    """Hold the database to every checkpoint in ``sink``.

    Each session named by a checkpoint must either still verify as a chain with at least the
    committed count and exactly the committed head at that count, or have a deletion record
    accounting for at least that many events (with the same final hash when counts match).
    The deletion chain and the retention change log must verify — links, hashes and each
    entry's signature — and contain every committed head; each deletion's basis, the policy
    and hold tables and the sessions' keys and end times must agree with them (see
    ``retention_proof``). Global checkpoints must chain to each other and match their
    manifests."""
    report = VerifyReport()
    files = dict(sink.items())
    # session -> (count, head) of the largest count any checkpoint committed to
    committed: dict[uuid.UUID, tuple[int, bytes | None, str]] = {}
    deletion_heads: list[tuple[int, bytes, str]] = []
    change_heads: list[tuple[int, bytes, str]] = []
    prev_global: bytes | None = None

    def commit(sid: uuid.UUID, count: int, head: bytes | None, where: str) -> None:
        have = committed.get(sid)
        if have is None or count > have[0]:
            committed[sid] = (count, head, where)

    for name in sorted(files):
        if not name.endswith(NOTE_SUFFIX):
            continue
        data = files[name]
        report.checkpoints += 1
        try:
            cp = parse_note(data, public_key)
        except CheckpointInvalid as exc:
            report.problems.append(f"checkpoint {name}: {exc.message}")
            continue
        if cp.origin == GLOBAL_ORIGIN:
            if not _check_global(
                cp, name, files, prev_global, report, commit, deletion_heads, change_heads
            ):
                prev_global = data
                continue
            prev_global = data
        elif cp.origin == CHANGES_ORIGIN:
            change_heads.append((cp.size, cp.root, name))
        elif cp.session_id is not None:
            commit(cp.session_id, cp.size, cp.root if cp.size else None, name)
        else:
            report.problems.append(f"checkpoint {name}: unknown origin {cp.origin!r}")
            continue
        report.checkpoints_valid += 1

    # The deletion chain and the change log (signed), the heads checkpoints committed to,
    # and what retention's proof says about the tables and sessions.
    proof = verify_retention(
        engine,
        public_key=public_key,
        floor=floor,
        deletion_keep={n - 1 for n, _, _ in deletion_heads if n > 0},
        changes_keep={n - 1 for n, _, _ in change_heads if n > 0},
    )
    chain_result = proof.chain
    report.deletion_records = chain_result.count
    if not chain_result.ok:
        report.deletion_chain_ok = False
    report.problems.extend(proof.problems)
    for n, head, where in change_heads:
        if n == 0:
            continue
        got = proof.changes.hashes.get(n - 1)
        if got is None:
            if proof.changes.count < n:
                report.problems.append(
                    f"change log: {where} committed to {n} entries, the database has "
                    f"{proof.changes.count} (policy or hold changes removed)"
                )
        elif got != head:
            report.problems.append(f"change log: entry {n - 1} differs from {where} (rewritten)")
    for n, head, where in deletion_heads:
        if n == 0:
            continue
        got = chain_result.hashes.get(n - 1)
        if got is None:
            if chain_result.ok:
                report.deletion_chain_ok = False
                report.problems.append(
                    f"deletion records: {where} committed to {n} records, the database has "
                    f"{chain_result.count} (rolled back)"
                )
        elif got != head:
            report.deletion_chain_ok = False
            report.problems.append(
                f"deletion records: record {n - 1} differs from {where} (rewritten)"
            )

    deletions: dict[uuid.UUID, list[store_deletions.DeletionRecord]] = {}
    for r in store_deletions.iter_deletion_records(engine):
        deletions.setdefault(r.session_id, []).append(r)
    rows = heads.session_heads(engine, list(committed))
    for sid, (count, committed_head, where) in sorted(committed.items(), key=lambda kv: str(kv[0])):
        report.sessions += 1
        problem = _check_session(
            engine, sid, count, committed_head, rows.get(sid), deletions.get(sid)
        )
        if problem is None:
            report.sessions_valid += 1
        else:
            report.problems.append(f"session {sid}: {problem} (committed by {where})")
    for sid in store_deletions.sessions_without_deletion_record(engine):
        report.problems.append(f"session {sid}: marked shredded/purged but has no deletion record")
    return report


def _check_global(
    cp: Checkpoint,
    name: str,
    files: dict[str, bytes],
    prev_global: bytes | None,
    report: VerifyReport,
    commit: Callable[[uuid.UUID, int, bytes | None, str], None],
    deletion_heads: list[tuple[int, bytes, str]],
    change_heads: list[tuple[int, bytes, str]],
) -> bool:
    prev = cp.extension("prev")
    want_prev = (
        base64.b64encode(hashlib.sha256(prev_global).digest()).decode() if prev_global else "-"
    )
    if prev is None or prev[0] != want_prev:
        report.problems.append(
            f"checkpoint {name}: does not chain to the previous global checkpoint "
            "(one was removed or replaced)"
        )
        return False
    manifest = files.get(name[: -len(NOTE_SUFFIX)] + MANIFEST_SUFFIX)
    if manifest is None:
        report.problems.append(f"checkpoint {name}: its manifest is missing")
        return False
    if manifest_root(manifest) != cp.root:
        report.problems.append(f"checkpoint {name}: manifest does not match the signed hash")
        return False
    try:
        entries = parse_manifest(manifest)
        dels = cp.extension("deletions")
        if dels is None or len(dels) != 2:
            raise ValueError("no deletions line")
        del_count, del_head = int(dels[0]), base64.b64decode(dels[1], validate=True)
        chg = cp.extension("changes")
        if chg is not None and len(chg) != 2:
            raise ValueError("malformed changes line")
        changes = (
            (int(chg[0]), base64.b64decode(chg[1], validate=True)) if chg is not None else None
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        report.problems.append(f"checkpoint {name}: malformed manifest or extension")
        return False
    if len(entries) != cp.size:
        report.problems.append(f"checkpoint {name}: manifest has {len(entries)} sessions")
        return False
    for sid, count, head in entries:
        commit(sid, count, head, name)
    deletion_heads.append((del_count, del_head, name))
    if changes is not None:
        change_heads.append((changes[0], changes[1], name))
    return True


def _check_session(
    engine: Engine,
    sid: uuid.UUID,
    count: int,
    head: bytes | None,
    row: heads.SessionHead | None,
    deletions: list[store_deletions.DeletionRecord] | None,
) -> str | None:
    if deletions:
        d = deletions[-1]
        if d.event_count < count:
            return (
                f"{count} events were checkpointed but its deletion record accounts for only "
                f"{d.event_count}: events were removed outside the retention path"
            )
        if d.event_count == count and count > 0 and d.final_hash != head:
            return "its deletion record's final hash differs from the checkpointed head"
        return None
    if row is None:
        return "missing from the database and has no deletion record"
    if row.status in ("shredded", "purged"):
        return f"is {row.status} without a deletion record"
    with engine.connect() as conn:
        result = chain_verifier.verify(
            store_sessions.iter_session_events(conn, sid),
            expected_count=count if count > 0 else None,
            expected_head=head if count > 0 else None,
        )
    if not result.ok:
        return f"chain does not match the checkpoint: {result.reason}"
    return None


def load_public_key(value: str | None, key_provider: Callable[[], KeyProvider]) -> bytes:
    """``--public-key``: base64 text or a file holding it; default: the keyring's key."""
    if value is None:
        return key_provider().signing_public_key()
    text_ = value
    path = Path(value)
    with contextlib.suppress(OSError):
        if path.is_file():
            text_ = path.read_text().strip()
    try:
        raw = base64.b64decode(text_.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuditagentError(
            "the public key is not base64", fix="pass the output of `auditagent keys public`"
        ) from None
    if len(raw) != 32:
        raise AuditagentError(
            f"the public key is {len(raw)} bytes, an Ed25519 key is 32",
            fix="pass the output of `auditagent keys public`",
        )
    return raw
