"""reading.bundle without a database: a signed export checks offline; an edit anywhere is
found and located; a bundle cut short or re-signed by another key is refused."""

from __future__ import annotations

import copy
import json
from typing import Any

from auditagent.integrity import crypto
from auditagent.reading import bundle
from auditagent.reading.decrypt import read_verified
from tests.support.sealed import Sealed


def make_bundle(sealed: Sealed, signing_key: bytes) -> dict[str, Any]:
    opened, result = read_verified(crypto.Sealer(sealed.key), sealed.session, sealed.tuples())
    doc = {
        "format": bundle.BUNDLE_FORMAT,
        "version": bundle.BUNDLE_VERSION,
        "session": {
            "id": str(sealed.session.id),
            "tenant": "acme",
            "event_count": sealed.session.event_count,
            "head_hash": sealed.session.head_hash.hex(),
        },
        "records": [
            {
                "seq": o.seq,
                "at": o.at.isoformat(),
                "kind": o.kind,
                "record": o.record.model_dump(mode="json"),
            }
            for o in opened
        ],
        "chain": [bundle.chain_row_json(e) for e in sealed.envelopes],
        "verification": {"ok": result.ok},
    }
    return bundle.sign_bundle(bundle.json_safe(doc), signing_key)


def test_signed_bundle_checks_offline(sealed: Sealed) -> None:
    key = crypto.signing_key_generate()
    doc = json.loads(json.dumps(make_bundle(sealed, key)))
    check = bundle.check_bundle(doc, public_key=crypto.signing_public_key(key))
    assert check.ok and check.events == len(sealed.records) and check.problems == ()
    assert bundle.check_bundle(doc).ok  # the chain alone, without the key


def test_an_edited_text_is_located(sealed: Sealed) -> None:
    key = crypto.signing_key_generate()
    doc = make_bundle(sealed, key)
    edited = copy.deepcopy(doc)
    edited["records"][1]["record"]["text"] = "my zebrafinch arrived"
    check = bundle.check_bundle(edited, public_key=crypto.signing_public_key(key))
    assert not check.ok
    assert check.reason == "record seq 1: `record.text` differs from the signed export"


def test_a_cut_chain_and_another_key_are_refused(sealed: Sealed) -> None:
    key = crypto.signing_key_generate()
    doc = make_bundle(sealed, key)
    cut = copy.deepcopy(doc)
    cut["chain"].pop()
    check = bundle.check_bundle(cut)
    assert (
        not check.ok
        and check.reason == "chain: first bad seq 7: chain truncated: 7 events, expected 8"
    )
    other = crypto.signing_public_key(crypto.signing_key_generate())
    check = bundle.check_bundle(doc, public_key=other)
    assert not check.ok and check.reason is not None and "signed by another key" in check.reason
    assert not bundle.check_bundle({"format": "nope"}).ok
