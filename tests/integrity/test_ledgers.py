"""integrity.ledgers: the access, deletion and change-log formats give exactly the bytes the
store's writers produce (existing data must verify), and one LedgerVerifier reports each
ledger's findings in that ledger's words. No database."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from auditagent.integrity import crypto, ledger_format, ledgers
from auditagent.integrity.chain import GENESIS
from auditagent.integrity.encoding import CHANGE_SIGNATURE_LABEL, DELETION_SIGNATURE_LABEL
from auditagent.integrity.signed_logs import check_deletion_chain
from auditagent.store import access_log, deletions

T0 = datetime(2026, 2, 3, 4, 5, 6, 789012, tzinfo=timezone.utc)
SID = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab")
RUN = uuid.UUID("00000000-0000-4000-8000-00000000000a")


@pytest.mark.parametrize(
    "entry",
    [
        access_log.AccessEntry(action="read_transcript"),
        access_log.AccessEntry(
            action="read_transcript",
            principal_id=uuid.uuid4(),
            principal_name="auditor-zebrafinch",
            role="auditor",
            tenant="acme",
            session_id=SID,
            route="/v1/sessions/{id}/transcript",
            reason="case 42 \ud800",
            correlation_id="",
            detail={"b": [1, 2], "a": {"z": None, "y": "é"}},
        ),
    ],
    ids=["bare", "full"],
)
def test_access_hash_is_the_store_format(entry: access_log.AccessEntry) -> None:
    for seq, prev in ((0, GENESIS), (7, bytes(range(32)))):
        ours = ledgers.access_hash(prev_hash=prev, seq=seq, at=T0, entry=entry)
        assert ours == ledger_format.access_hash(prev_hash=prev, seq=seq, at=T0, entry=entry)


@pytest.mark.parametrize("basis", [None, {}, {"holds": {"changes": 3}, "ended_at": "x"}])
@pytest.mark.parametrize("run_id", [None, RUN])
@pytest.mark.parametrize("final_hash", [None, b"\x01" * 32])
def test_deletion_record_hash_is_the_store_format(
    basis: dict[str, Any] | None, run_id: uuid.UUID | None, final_hash: bytes | None
) -> None:
    fields: dict[str, Any] = dict(
        prev_hash=bytes(range(32)),
        seq=12,
        run_id=run_id,
        session_id=SID,
        tenant="acme",
        policy="tenant:acme v2",
        reason="retention",
        event_count=2001,
        final_hash=final_hash,
        deleted_at=T0,
        basis=basis,
    )
    assert ledgers.deletion_record_hash(**fields) == ledger_format.deletion_record_hash(**fields)


def test_change_hash_is_the_store_format() -> None:
    fields: dict[str, Any] = dict(
        prev_hash=GENESIS,
        seq=3,
        at=T0,
        action="hold.create",
        tenant="acme",
        subject=SID,
        actor="admin zebrafinch",
        body={"scope": "tenant", "n": 1, "nested": {"b": True}},
    )
    assert ledgers.change_hash(**fields) == ledger_format.change_hash(**fields)
    assert ledgers.canonical_json(fields["body"]) == ledger_format.canonical_json(fields["body"])


def test_formats_refuse_a_bad_prev_hash_and_naive_time() -> None:
    with pytest.raises(ValueError):
        ledgers.change_hash(
            prev_hash=b"short",
            seq=0,
            at=T0,
            action="a",
            tenant="t",
            subject=SID,
            actor="x",
            body={},
        )
    with pytest.raises(ValueError):
        ledgers.access_hash(
            prev_hash=GENESIS, seq=0, at=T0.replace(tzinfo=None), entry=access_log.AccessEntry("a")
        )


# --- the access log through the one verifier ------------------------------------------------


def _access_rows(n: int) -> list[SimpleNamespace]:
    rows = []
    prev = GENESIS
    for seq in range(n):
        entry = access_log.AccessEntry(
            action="read", tenant="acme", session_id=SID, detail={"i": seq}
        )
        at = T0 + timedelta(seconds=seq)
        digest = ledgers.access_hash(prev_hash=prev, seq=seq, at=at, entry=entry)
        rows.append(SimpleNamespace(seq=seq, at=at, entry=entry, prev_hash=prev, hash=digest))
        prev = digest
    return rows


def _entry_of(row: Any) -> access_log.AccessEntry:
    entry: access_log.AccessEntry = row.entry
    return entry


def test_access_log_verifies_and_reports_its_head() -> None:
    rows = _access_rows(4)
    res = ledgers.verify_access_rows(rows, _entry_of)
    assert (res.ok, res.count, res.head, res.reason) == (True, 4, rows[-1].hash, None)


def test_access_log_edit_gap_and_reorder() -> None:
    rows = _access_rows(4)
    edited = list(rows)
    edited[2] = SimpleNamespace(
        **{**vars(rows[2]), "entry": access_log.AccessEntry(action="forged")}
    )
    res = ledgers.verify_access_rows(edited, _entry_of)
    assert (res.ok, res.count, res.first_bad_seq, res.reason) == (
        False,
        2,
        2,
        "hash mismatch (entry altered)",
    )
    assert res.head == rows[1].hash
    res = ledgers.verify_access_rows([rows[0], rows[2]], _entry_of)
    assert (res.first_bad_seq, res.reason) == (1, "missing seq 1")
    res = ledgers.verify_access_rows([rows[0], rows[1], rows[1]], _entry_of)
    assert (res.first_bad_seq, res.reason) == (1, "seq 1 out of order")


# --- the deletion chain through the one verifier ----------------------------------------------


def _deletions(n: int, signing_key: bytes) -> list[deletions.DeletionRecord]:
    out = []
    prev = GENESIS
    for seq in range(n):
        rec = deletions.DeletionRecord(
            seq=seq,
            run_id=RUN,
            session_id=uuid.uuid4(),
            tenant="acme",
            policy="default",
            reason="retention",
            event_count=10 + seq,
            final_hash=b"\x02" * 32,
            deleted_at=T0 + timedelta(days=seq),
            prev_hash=prev,
            hash=b"",
            basis={"n": seq},
        )
        digest = rec.recomputed_hash()
        sig = crypto.sign(signing_key, DELETION_SIGNATURE_LABEL + digest)
        out.append(dataclasses.replace(rec, hash=digest, signature=sig))
        prev = digest
    return out


def test_deletion_chain_signed_kept_and_forged() -> None:
    key = crypto.signing_key_generate()
    public = crypto.signing_public_key(key)
    recs = _deletions(3, key)
    res = check_deletion_chain(recs, keep={1}, public_key=public)
    assert res.ok and res.count == 3 and res.head == recs[-1].hash
    assert res.hashes == {1: recs[1].hash}

    other = crypto.signing_public_key(crypto.signing_key_generate())
    res = check_deletion_chain(recs, public_key=other)
    assert not res.ok and res.first_bad_seq == 0 and res.count == 0
    assert res.reason is not None and res.reason.startswith("deletion record not signed")

    res = check_deletion_chain([recs[0], recs[2]], public_key=public)
    assert (res.first_bad_seq, res.reason) == (1, "deletion record 1 missing")
    altered = dataclasses.replace(recs[1], event_count=0)
    res = check_deletion_chain([recs[0], altered, recs[2]], public_key=public)
    assert (res.first_bad_seq, res.reason) == (1, "deletion record altered (hash mismatch)")


def test_deletion_chain_adopted_prefix() -> None:
    key = crypto.signing_key_generate()
    public = crypto.signing_public_key(key)
    recs = [dataclasses.replace(r, signature=None) for r in _deletions(2, key)]
    assert check_deletion_chain(recs, public_key=public, adopted=(2, recs[1].hash)).ok
    res = check_deletion_chain(recs, public_key=public, adopted=(2, b"\x00" * 32))
    assert (res.first_bad_seq, res.reason) == (1, "deletion record differs from what was adopted")
    res = check_deletion_chain(recs, public_key=public, adopted=(1, recs[0].hash))
    assert res.first_bad_seq == 1 and not res.ok


def test_signature_labels_keep_the_ledgers_apart() -> None:
    key = crypto.signing_key_generate()
    public = crypto.signing_public_key(key)
    digest = b"\x07" * 32
    sig = crypto.sign(key, DELETION_SIGNATURE_LABEL + digest)
    assert ledgers.signature_valid(public, DELETION_SIGNATURE_LABEL, digest, sig)
    assert not ledgers.signature_valid(public, CHANGE_SIGNATURE_LABEL, digest, sig)
    assert not ledgers.signature_valid(public, DELETION_SIGNATURE_LABEL, digest, None)
