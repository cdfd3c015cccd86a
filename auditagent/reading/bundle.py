"""Signed evidence bundles: build one from a session's opened records and sealed rows, and
check one offline, without any data key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from auditagent.audio.bundle import bundle_audio_findings
from auditagent.integrity import chain_verifier, crypto
from auditagent.integrity.checkpoints.note import key_id as _note_key_id
from auditagent.integrity.encoding import canonical_json
from auditagent.integrity.envelope import Envelope

__all__ = [
    "BUNDLE_CANONICAL",
    "BUNDLE_FORMAT",
    "BUNDLE_HOW_TO_CHECK",
    "BUNDLE_SIGNATURE_ALG",
    "BUNDLE_VERSION",
    "BundleCheck",
    "bundle_parts",
    "chain_row_json",
    "check_bundle",
    "json_safe",
    "load_bundle",
    "sign_bundle",
]

BUNDLE_FORMAT: Final = "auditagent-evidence-bundle"
BUNDLE_VERSION = 2
"""2: the whole document is signed (``signature``); 1 was unsigned."""

# --- evidence bundles ------------------------------------------------------------------------
#
# A bundle is one JSON document: session metadata, the decrypted records, the sealed chain rows
# (hex) and the verification result, plus a ``signature`` member. The service signs the
# document's canonical bytes with its Ed25519 key (the checkpoint key, `auditagent keys
# public`), so that any edit of any field — the readable text included, which the chain alone
# cannot tie to its ciphertext without the data key — breaks the signature. The canonical
# bytes need nothing of ours to reproduce (see ``BUNDLE_CANONICAL``).

BUNDLE_SIGNATURE_ALG: Final = "Ed25519"
BUNDLE_CANONICAL: Final = (
    "the bundle with its `signature` member removed, as JSON with object keys sorted, no "
    "whitespace, every non-ASCII character escaped as \\uXXXX (lowercase hex, UTF-16 pairs), "
    "numbers in their shortest round-trip form: exactly Python's "
    "json.dumps(doc, sort_keys=True, separators=(',', ':'), ensure_ascii=True, "
    "allow_nan=False) encoded as ASCII"
)
BUNDLE_HOW_TO_CHECK: Final = (
    'Without auditagent: (1) python3 -c "import json,sys; d=json.load(open(sys.argv[1])); '
    "d.pop('signature'); sys.stdout.write(json.dumps(d, sort_keys=True, separators=(',', ':'), "
    'ensure_ascii=True, allow_nan=False))" bundle.json > canonical.json; (2) sha256sum '
    "canonical.json must print `canonical_sha256`; (3) `value` is an Ed25519 signature over "
    "canonical.json by `public_key` (raw 32 bytes, base64): compare public_key with the one the "
    "service publishes (`auditagent keys public`); with OpenSSL 3: pub.pem is the PEM of the DER "
    "bytes 302a300506032b6570032100 followed by the 32 key bytes, sig.bin the base64-decoded "
    "value, then openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in canonical.json "
    "-sigfile sig.bin. (4) The chain: hash_n = SHA-256('auditagent/chain/v1\\0' || prev_hash || "
    "length-prefixed session id, seq, kind, key_id, tenant, at (microseconds), nonce, "
    "ciphertext), from 32 zero bytes, ending at session.head_hash after session.event_count "
    "records. `parts` (signed on its own by `parts_value`) holds a short SHA-256 of every part "
    "so a verifier can say which part changed; it adds nothing to what `value` proves."
)


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats (which JSON cannot carry) as the strings "NaN",
    "Infinity", "-Infinity"; everything else unchanged."""
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def _short(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()[:16]


def _record_fields(item: Any) -> dict[str, str]:
    fields = {k: _short(item.get(k)) for k in ("seq", "at", "kind")}
    record = item.get("record")
    if isinstance(record, dict):
        for k, v in record.items():
            fields[f"record.{k}"] = _short(v)
    else:
        fields["record"] = _short(record)
    return fields


def bundle_parts(doc: dict[str, Any]) -> dict[str, Any]:
    """Short digests of every part of a bundle, so a verifier can name what changed."""
    session = doc.get("session")
    return {
        "members": {
            k: _short(v) for k, v in doc.items() if k not in ("signature", "records", "chain")
        },
        "session": (
            {k: _short(v) for k, v in session.items()} if isinstance(session, dict) else {}
        ),
        "records": [_record_fields(r) if isinstance(r, dict) else {} for r in doc["records"]],
        "chain": [_short(r) for r in doc["chain"]],
    }


def sign_bundle(doc: dict[str, Any], signing_key: bytes) -> dict[str, Any]:
    """``doc`` (JSON-ready: strings, numbers, lists, dicts) with its ``signature`` member."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    canonical = canonical_json(body)
    public = crypto.signing_public_key(signing_key)
    parts = bundle_parts(body)
    body["signature"] = {
        "algorithm": BUNDLE_SIGNATURE_ALG,
        "public_key": base64.b64encode(public).decode("ascii"),
        "key_id": _key_id(public),
        "canonicalization": BUNDLE_CANONICAL,
        "canonical_sha256": hashlib.sha256(canonical).hexdigest(),
        "value": base64.b64encode(crypto.sign(signing_key, canonical)).decode("ascii"),
        "parts": parts,
        "parts_value": base64.b64encode(crypto.sign(signing_key, canonical_json(parts))).decode(
            "ascii"
        ),
        "how_to_check": BUNDLE_HOW_TO_CHECK,
    }
    return body


def _key_id(public: bytes) -> str:
    # The C2SP signed-note key id the checkpoints use, so both name the key alike.
    return _note_key_id(public).hex()


def chain_row_json(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "kind": row.kind,
        "at": row.at.astimezone(timezone.utc).isoformat(),
        "key_id": row.key_id,
        "nonce": bytes(row.nonce).hex(),
        "ciphertext": bytes(row.ciphertext).hex(),
        "prev_hash": bytes(row.prev_hash).hex(),
        "hash": bytes(row.hash).hex(),
    }


@dataclass(frozen=True)
class BundleCheck:
    ok: bool
    session_id: str
    events: int
    first_bad_seq: int | None
    reason: str | None
    problems: tuple[str, ...] = ()
    """Every finding, most telling first (``reason`` is the first)."""


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64") from None


def _signature_findings(doc: dict[str, Any], public_key: bytes) -> list[str]:
    """What is wrong with the bundle's signature, naming the parts that changed."""
    sig = doc.get("signature")
    if not isinstance(sig, dict):
        return ["the bundle is not signed: its readable text is not bound to anything"]
    try:
        if sig.get("algorithm") != BUNDLE_SIGNATURE_ALG:
            raise ValueError(f"unknown signature algorithm {sig.get('algorithm')!r}")
        claimed = _b64(sig.get("public_key"), "signature.public_key")
        value = _b64(sig.get("value"), "signature.value")
    except ValueError as exc:
        return [f"malformed signature: {exc}"]
    if claimed != public_key:
        return [
            f"signed by another key (key id {_key_id(claimed)}); the trusted key is "
            f"{_key_id(public_key)}: not an export of this service, or re-signed after an edit"
        ]
    body = {k: v for k, v in doc.items() if k != "signature"}
    try:
        canonical = canonical_json(body)
    except ValueError:
        return ["the bundle holds a value JSON cannot carry (NaN/Infinity): edited"]
    if crypto.verify_signature(public_key, canonical, value):
        return []
    # The document does not match its signature: say where, from the separately signed
    # digests of its parts when those are intact.
    parts = sig.get("parts")
    try:
        parts_ok = isinstance(parts, dict) and crypto.verify_signature(
            public_key, canonical_json(parts), _b64(sig.get("parts_value"), "parts_value")
        )
    except ValueError:
        parts_ok = False
    if not parts_ok or not isinstance(parts, dict):
        return [
            "the bundle does not match its signature (edited after export; its part digests "
            "were altered too, so the edit cannot be located)"
        ]
    found = _diff_parts(parts, bundle_parts(body), body)
    return found or ["the bundle does not match its signature (edited after export)"]


def _diff_parts(signed: dict[str, Any], now: dict[str, Any], body: dict[str, Any]) -> list[str]:
    out: list[str] = []
    tail = "differs from the signed export"
    for group, label in (("members", "field `{}`"), ("session", "session field `{}`")):
        a, b = signed.get(group) or {}, now.get(group) or {}
        for k in sorted(set(a) | set(b)):
            if k not in b:
                out.append(f"{label.format(k)} was removed (it is in the signed export)")
            elif k not in a:
                out.append(f"{label.format(k)} was added (not in the signed export)")
            elif a[k] != b[k]:
                out.append(f"{label.format(k)} {tail}")
    records = body.get("records") or []
    a_recs, b_recs = signed.get("records") or [], now.get("records") or []
    if len(a_recs) != len(b_recs):
        out.append(f"records: {len(b_recs)} in the bundle, {len(a_recs)} were signed")
    for i, (a, b) in enumerate(zip(a_recs, b_recs, strict=False)):
        if a == b:
            continue
        seq = records[i].get("seq") if isinstance(records[i], dict) else None
        where = f"record seq {seq}" if isinstance(seq, int) else f"record #{i}"
        names = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        out.append(f"{where}: {', '.join(f'`{n}`' for n in names)} {tail}")
    a_chain, b_chain = signed.get("chain") or [], now.get("chain") or []
    if len(a_chain) != len(b_chain):
        out.append(f"chain: {len(b_chain)} rows in the bundle, {len(a_chain)} were signed")
    for i, (a, b) in enumerate(zip(a_chain, b_chain, strict=False)):
        if a != b:
            out.append(f"chain row #{i} {tail}")
    return out


def check_bundle(doc: Any, *, public_key: bytes | None = None) -> BundleCheck:
    """Verify an exported bundle offline, without any data key.

    With ``public_key`` (the service's, from `auditagent keys public`): the Ed25519 signature
    over the whole document must verify, which binds every field, the decrypted text
    included; when it does not, each part that changed is named. Always: the chain is
    recomputed from the hex rows and held to the stated count and head, and each decrypted
    record's seq, kind and time must match its sealed chain row.
    """
    sid = "?"
    try:
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if doc.get("format") != BUNDLE_FORMAT:
            raise ValueError("not an auditagent evidence bundle")
        if doc.get("version") not in (1, BUNDLE_VERSION):
            raise ValueError(f"unsupported bundle version {doc.get('version')!r}")
        session = doc["session"]
        sid = str(session["id"])
        session_id = uuid.UUID(sid)
        tenant = str(session["tenant"])
        stated_count = int(session["event_count"])
        stated_head = session.get("head_hash")
        head = bytes.fromhex(stated_head) if isinstance(stated_head, str) and stated_count else None
        rows = [
            Envelope(
                session_id=session_id,
                seq=int(r["seq"]),
                tenant=tenant,
                kind=str(r["kind"]),
                at=datetime.fromisoformat(str(r["at"])),
                key_id=str(r["key_id"]),
                nonce=bytes.fromhex(r["nonce"]),
                ciphertext=bytes.fromhex(r["ciphertext"]),
                prev_hash=bytes.fromhex(r["prev_hash"]),
                hash=bytes.fromhex(r["hash"]),
            )
            for r in doc["chain"]
        ]
        recs = doc.get("records") or []
        if not isinstance(recs, list):
            raise ValueError("records is not a list")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        why = f"malformed bundle: {exc}"
        return BundleCheck(False, sid, 0, None, why, (why,))
    problems: list[str] = []
    first_bad: int | None = None
    if public_key is not None:
        problems += _signature_findings(doc, public_key)
    # The session's stated (event_count, head_hash) act as a checkpoint, as in the database
    # verifier: a row cut from the end of the bundle is caught there.
    result = chain_verifier.verify(rows, expected_count=stated_count or None, expected_head=head)
    if not result.ok:
        first_bad = result.first_bad_seq
        where = f"first bad seq {first_bad}: " if first_bad is not None else ""
        problems.append(f"chain: {where}{result.reason}")
    by_seq = {r.seq: r for r in rows}
    for rec in recs:
        seq = rec.get("seq") if isinstance(rec, dict) else None
        row = by_seq.get(seq) if isinstance(seq, int) else None
        if row is None or not isinstance(rec, dict):
            problems.append(f"decrypted record {seq!r} does not match the chain (no such row)")
            first_bad = (
                first_bad if first_bad is not None else (seq if isinstance(seq, int) else None)
            )
            continue
        diffs = []
        if rec.get("kind") != row.kind:
            diffs.append("`kind`")
        try:
            if datetime.fromisoformat(str(rec.get("at"))) != row.at:
                diffs.append("`at`")
        except ValueError:
            diffs.append("`at`")
        if diffs:
            problems.append(
                f"decrypted record seq {seq}: {', '.join(diffs)} does not match the chain "
                "(its sealed row)"
            )
            if first_bad is None:
                first_bad = seq
    problems += bundle_audio_findings(doc)
    if problems:
        return BundleCheck(False, sid, result.events, first_bad, problems[0], tuple(problems))
    return BundleCheck(True, sid, result.events, None, None)


def load_bundle(data: bytes) -> Any:
    return json.loads(data)
