"""integrity.ledgers: the access, deletion and change-log formats give exactly the bytes the
store's writers have always produced (existing data must verify), and one LedgerVerifier
reports each ledger's findings in that ledger's words. No database."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from auditagent.integrity import crypto, ledgers
from auditagent.integrity.chain import GENESIS
from auditagent.integrity.encoding import (
    CHANGE_SIGNATURE_LABEL,
    DELETION_SIGNATURE_LABEL,
    canonical_json,
)
from auditagent.integrity.signed_logs import check_deletion_chain
from auditagent.store import access_log, deletions

T0 = datetime(2026, 2, 3, 4, 5, 6, 789012, tzinfo=timezone.utc)
SID = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab")
RUN = uuid.UUID("00000000-0000-4000-8000-00000000000a")


# Known answers: these bytes are a contract with every database already written (they were
# computed by the store's writers before the formats moved here); existing rows must verify.
PID = uuid.UUID("11111111-2222-4333-8444-555555555555")
ACCESS_ENTRIES = {
    "bare": access_log.AccessEntry(action="read_transcript"),
    "full": access_log.AccessEntry(
        action="read_transcript",
        principal_id=PID,
        principal_name="auditor-zebrafinch",
        role="auditor",
        tenant="acme",
        session_id=SID,
        route="/v1/sessions/{id}/transcript",
        reason="case 42 \ud800",
        correlation_id="",
        detail={"b": [1, 2], "a": {"z": None, "y": "é"}},
    ),
}


@pytest.mark.parametrize(
    ("entry", "seq", "expected"),
    [
        ("bare", 0, "6751956cfb1d7f675021186ba7e4265c8fd72ca2d48064430e5d85ea51ff96ca"),
        ("bare", 7, "570e7a62d4fbb7efdf3e29ca97b443afcf6882c17abab9c51d9627db50ea5208"),
        ("full", 0, "12e98bbeb572bf89f4836742ec5f1a05b47af80a0b6823201f847bb14ca6d083"),
        ("full", 7, "7b99559926b01c34de0a0c64ad34619e146586107936adee17310cd3d923b4fa"),
    ],
)
def test_access_hash_known_answers(entry: str, seq: int, expected: str) -> None:
    prev = GENESIS if seq == 0 else bytes(range(32))
    got = ledgers.access_hash(prev_hash=prev, seq=seq, at=T0, entry=ACCESS_ENTRIES[entry])
    assert got.hex() == expected


BASES: dict[str, dict[str, Any] | None] = {
    "v1": None,
    "empty": {},
    "full": {"holds": {"changes": 3}, "ended_at": "x"},
}


@pytest.mark.parametrize(
    ("basis", "with_run", "with_final", "expected"),
    [
        ("v1", False, False, "79e07b25085345535aa4a3739375d1726ed51728c562e2a6d5fee5661cc44934"),
        ("v1", False, True, "d7cfeca8937b6aec5b76106ab8278c54c408d61f7dd85061d1b19b155b819042"),
        ("v1", True, False, "7a798725d32bebea2aab3a904d6ab64ca30fb5b35ecdb2491c714644caf6e91c"),
        ("v1", True, True, "f4aff0cb87c19d01c8893e94123552dfb57a9eddc9fc3ec514c7d7169e40e968"),
        ("empty", False, False, "46798da24e80cfacd404d0afece145d72c5d3cbcaf1b80d4d0766ae180af0e6c"),
        ("empty", False, True, "d7be9e1f3a6200f6c4375fb1d7d2f2c86468457fde5268211e0ae347d020fee6"),
        ("empty", True, False, "bdb073288b6251a33884bafd33d4cd912bb4070917d70e870037daef2a5ea42c"),
        ("empty", True, True, "8e0f3bb9dcfcf46487061b641628c3c9b9995c6dcda29a9b3ac0c72f11bcbded"),
        ("full", False, False, "9e808ef7c5ddb75b56bc496bbd14e890d694246f29349b4de4eb9cab8af9a9b0"),
        ("full", False, True, "1bb2031a36f9b133cadd3f53399e555845f6e11ec1e3c3781c5c0cf190898dc6"),
        ("full", True, False, "e19acf3444668a204193939ec599fc60748958af16ff9c5735cd3f3912c4e954"),
        ("full", True, True, "dc49ff394f51a2d308b2922aac69cb1ae3f0462155a58d7f5ba9f7b6e916331c"),
    ],
)
def test_deletion_record_hash_known_answers(
    basis: str, with_run: bool, with_final: bool, expected: str
) -> None:
    got = ledgers.deletion_record_hash(
        prev_hash=bytes(range(32)),
        seq=12,
        run_id=RUN if with_run else None,
        session_id=SID,
        tenant="acme",
        policy="tenant:acme v2",
        reason="retention",
        event_count=2001,
        final_hash=b"\x01" * 32 if with_final else None,
        deleted_at=T0,
        basis=BASES[basis],
    )
    assert got.hex() == expected


def test_change_hash_known_answer() -> None:
    body = {"scope": "tenant", "n": 1, "nested": {"b": True}}
    got = ledgers.change_hash(
        prev_hash=GENESIS,
        seq=3,
        at=T0,
        action="hold.create",
        tenant="acme",
        subject=SID,
        actor="admin zebrafinch",
        body=body,
    )
    assert got.hex() == "558d43176c75fa070a669a311f22e77fad26fa437932faa1041652b1694d57f1"
    assert canonical_json(body) == b'{"n":1,"nested":{"b":true},"scope":"tenant"}'


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
