"""Tampering is found: edited, deleted (middle and last), reordered and swapped-in rows, through
`/verify`, `auditagent verify` and exported evidence bundles."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent.cli import main
from auditagent.integrity import crypto
from auditagent.keys import LocalKeyring
from auditagent.reading import bundle as reading_bundle
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.api import auth, make_token, record_conversation

DISABLE = "ALTER TABLE events DISABLE TRIGGER events_append_only"
ENABLE = "ALTER TABLE events ENABLE TRIGGER events_append_only"

# name -> (SQL run with the guard trigger off, expected first bad seq, reason fragment)
TAMPERS: dict[str, tuple[list[str], int, str]] = {
    "edited": (
        [
            DISABLE,
            "UPDATE events SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1)"
            " WHERE session_id = %(sid)s AND seq = 3",
            ENABLE,
        ],
        3,
        "hash mismatch",
    ),
    "deleted": (
        [
            "SET LOCAL auditagent.allow_purge = 'on'",
            "DELETE FROM events WHERE session_id = %(sid)s AND seq = 4",
        ],
        4,
        "missing seq 4",
    ),
    "deleted-last": (
        [
            "SET LOCAL auditagent.allow_purge = 'on'",
            "DELETE FROM events WHERE session_id = %(sid)s AND seq = 9",
        ],
        9,
        "truncated",
    ),
    "reordered": (
        [
            DISABLE,
            "UPDATE events SET seq = 1000 WHERE session_id = %(sid)s AND seq = 2",
            "UPDATE events SET seq = 2 WHERE session_id = %(sid)s AND seq = 3",
            "UPDATE events SET seq = 3 WHERE session_id = %(sid)s AND seq = 1000",
            ENABLE,
        ],
        2,
        "mismatch",
    ),
    "swapped": (
        [
            DISABLE,
            "UPDATE events e SET nonce = o.nonce, ciphertext = o.ciphertext,"
            " prev_hash = o.prev_hash, hash = o.hash, kind = o.kind, key_id = o.key_id"
            " FROM events o WHERE e.session_id = %(sid)s AND e.seq = 5"
            " AND o.session_id = %(other)s AND o.seq = 5",
            ENABLE,
        ],
        5,
        "mismatch",
    ),
}


def _tamper(url: str, statements: list[str], sid: uuid.UUID, other: uuid.UUID) -> None:
    # One transaction, as a superuser would: the trigger is off only inside it.
    with psycopg.connect(db.libpq_url(url)) as conn, conn.transaction():
        for st in statements:
            conn.execute(st, {"sid": sid, "other": other})  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampering_is_reported(
    name: str,
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    statements, bad_seq, reason = TAMPERS[name]
    rec = record_conversation(settings, keyring, tenant=tenant)
    other = record_conversation(settings, keyring, tenant=tenant)
    url = settings.database_url or ""
    _tamper(url, statements, rec.session_id, other.session_id)
    h = auth(make_token(engine, "auditor", tenant))

    v = client.get(f"/v1/sessions/{rec.session_id}/verify", headers=h).json()
    assert v["ok"] is False
    assert v["first_bad_seq"] == bad_seq
    assert reason in v["reason"]
    detail = client.get(f"/v1/sessions/{rec.session_id}", headers=h).json()
    assert detail["integrity"]["ok"] is False
    # /events reports integrity exactly as /transcript does: a flagged 200 or the same problem
    t = client.get(f"/v1/sessions/{rec.session_id}/transcript", headers=h)
    e = client.get(f"/v1/sessions/{rec.session_id}/events", headers=h)
    assert (t.status_code, e.status_code) in ((200, 200), (409, 409))
    if t.status_code == 200:
        assert e.json()["integrity"] == t.json()["integrity"]
        assert e.json()["integrity"]["ok"] is False
    # The untouched session is still fine.
    assert client.get(f"/v1/sessions/{other.session_id}/verify", headers=h).json()["ok"]

    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", url)
    # The test's own data directory: never the user's (a demo run leaves checkpoints there).
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(settings.data_dir))
    assert main(["verify", str(rec.session_id)]) == 1
    out = capsys.readouterr().out
    assert f"session {rec.session_id}: first bad seq {bad_seq}: " in out
    assert "0/1 sessions valid" in out
    assert main(["verify", "--all", "--tenant", tenant]) == 1
    out = capsys.readouterr().out
    assert "1/2 sessions valid" in out
    assert str(rec.session_id) in out and str(other.session_id) not in out


def test_altered_ciphertext_is_refused_on_read(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    other = record_conversation(settings, keyring, tenant=tenant)
    _tamper(settings.database_url or "", TAMPERS["edited"][0], rec.session_id, other.session_id)
    h = auth(make_token(engine, "auditor", tenant))
    res = client.get(f"/v1/sessions/{rec.session_id}/transcript", headers=h)
    assert res.status_code == 409
    assert res.json()["type"].endswith("/integrity")
    assert "seq 3" in res.json()["detail"]


def test_verify_cli_all_valid_and_errors(
    settings: Settings,
    keyring: LocalKeyring,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for _ in range(3):
        record_conversation(settings, keyring, tenant=tenant)
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(settings.data_dir))
    assert main(["verify", "--all", "--tenant", tenant]) == 0
    assert "3/3 sessions valid, 30 events verified" in capsys.readouterr().out
    assert main(["verify", str(uuid.uuid4())]) == 2
    assert "no session" in capsys.readouterr().err
    assert main(["verify", "not-a-uuid"]) == 2


def test_export_bundle_verifies_offline(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    h = auth(make_token(engine, "auditor", tenant))
    res = client.get(f"/v1/sessions/{rec.session_id}/export", headers=h)
    assert res.status_code == 200
    assert "attachment" in res.headers["content-disposition"]
    bundle = res.json()
    assert bundle["format"] == "auditagent-evidence-bundle" and bundle["version"] == 2
    assert bundle["verification"]["ok"] is True
    assert len(bundle["chain"]) == len(bundle["records"]) == 10
    assert bundle["records"][1]["record"]["text"].startswith("what is my balance")
    assert bundle["signature"]["algorithm"] == "Ed25519"
    assert "sha256sum" in bundle["signature"]["how_to_check"]
    public = base64.b64encode(keyring.signing_public_key()).decode()
    # Offline: no database and no keyring.
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(tmp_path / "empty"))

    def check(doc: object, key: str | None = public) -> tuple[int, str]:
        path = tmp_path / f"bundle-{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(doc))
        code = main(["verify", "--bundle", str(path), *(["--public-key", key] if key else [])])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    code, out = check(bundle)
    assert code == 0, out
    assert "1/1 bundles valid, 10 events verified" in out
    # The signature needs a trusted key: without one (and no keyring here) it says how.
    code, out = check(bundle, key=None)
    assert code == 2 and "--public-key" in out and "\n" not in out.strip()

    def edited(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        doc = json.loads(json.dumps(bundle))
        change(doc)
        return doc

    def set_text(d: dict[str, Any]) -> None:
        d["records"][1]["record"]["text"] = "what is my balance zanzibarquokka"

    # The readable text, which the chain cannot tie to its ciphertext without the data key.
    code, out = check(edited(set_text))
    assert code == 1 and "record seq 1: `record.text` differs from the signed export" in out
    code, out = check(edited(lambda d: d.update(exported_by="someone else")))
    assert code == 1 and "field `exported_by` differs" in out
    code, out = check(edited(lambda d: d["session"].update(agent_name="billing")))
    assert code == 1 and "session field `agent_name` differs" in out
    code, out = check(edited(lambda d: d["verification"].update(reason="fine")))
    assert code == 1 and "field `verification` differs" in out

    def flip_ct(d: dict[str, Any]) -> None:
        ct = d["chain"][4]["ciphertext"]
        d["chain"][4]["ciphertext"] = ("0" if ct[0] != "0" else "1") + ct[1:]

    code, out = check(edited(flip_ct))
    assert code == 1 and "chain row #4 differs" in out and "first bad seq 4" in out
    code, out = check(edited(lambda d: d["chain"].pop()))
    assert code == 1 and "truncated" in out
    code, out = check(edited(lambda d: d["records"][2].update(kind="user_utterance")))
    assert code == 1 and "`kind` does not match the chain" in out

    # Edited, then re-signed with another key: the signature is valid, but not ours.
    forged = edited(set_text)
    forged = reading_bundle.sign_bundle(forged, crypto.signing_key_generate())
    code, out = check(forged)
    assert code == 1 and "signed by another key" in out
    # Edited together with the part digests: still caught, just not located.
    both = edited(set_text)
    both["signature"]["parts"]["records"][1]["record.text"] = "0" * 16
    code, out = check(both)
    assert code == 1 and "does not match its signature" in out

    code, out = check({"format": "something else"})
    assert code == 1 and "malformed bundle" in out


def test_bundle_checks_without_auditagent(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
    tmp_path: Path,
) -> None:
    """What the bundle's `how_to_check` promises, done with the standard library, sha256 and
    OpenSSL only."""
    rec = record_conversation(settings, keyring, tenant=tenant)
    h = auth(make_token(engine, "auditor", tenant))
    raw = client.get(f"/v1/sessions/{rec.session_id}/export", headers=h).content
    doc = json.loads(raw)
    sig = doc.pop("signature")
    canonical = json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()
    assert hashlib.sha256(canonical).hexdigest() == sig["canonical_sha256"]
    assert base64.b64decode(sig["public_key"]) == keyring.signing_public_key()
    der = bytes.fromhex("302a300506032b6570032100") + base64.b64decode(sig["public_key"])
    pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der) + b"\n-----END PUBLIC KEY-----\n"
    (tmp_path / "pub.pem").write_bytes(pem)
    (tmp_path / "canonical.json").write_bytes(canonical)
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(sig["value"]))

    def openssl_verify(data: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin"),
                *("-in", data, "-sigfile", "sig.bin"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )

    ok = openssl_verify("canonical.json")
    assert ok.returncode == 0 and "Signature Verified Successfully" in ok.stdout, ok.stderr
    doc["records"][1]["record"]["text"] = "what is my balance zanzibarquokka"
    (tmp_path / "edited.json").write_bytes(
        json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    )
    assert openssl_verify("edited.json").returncode != 0
