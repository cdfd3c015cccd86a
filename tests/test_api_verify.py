"""Tampering is found: edited, deleted (middle and last), reordered and swapped-in rows, through
`/verify`, `auditagent verify` and exported evidence bundles."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent.cli import main
from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from tests.api_support import (  # noqa: F401
    auth,
    client,
    engine,
    keyring,
    make_token,
    record_conversation,
)

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
    client: TestClient,  # noqa: F811
    settings: Settings,
    keyring: LocalKeyring,  # noqa: F811
    engine: Engine,  # noqa: F811
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
    # The untouched session is still fine.
    assert client.get(f"/v1/sessions/{other.session_id}/verify", headers=h).json()["ok"]

    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", url)
    assert main(["verify", str(rec.session_id)]) == 1
    out = capsys.readouterr().out
    assert f"session {rec.session_id}: first bad seq {bad_seq}: " in out
    assert "0/1 sessions valid" in out
    assert main(["verify", "--all", "--tenant", tenant]) == 1
    out = capsys.readouterr().out
    assert "1/2 sessions valid" in out
    assert str(rec.session_id) in out and str(other.session_id) not in out


def test_altered_ciphertext_is_refused_on_read(
    client: TestClient,  # noqa: F811
    settings: Settings,
    keyring: LocalKeyring,  # noqa: F811
    engine: Engine,  # noqa: F811
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
    keyring: LocalKeyring,  # noqa: F811
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for _ in range(3):
        record_conversation(settings, keyring, tenant=tenant)
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", settings.database_url or "")
    assert main(["verify", "--all", "--tenant", tenant]) == 0
    assert "3/3 sessions valid, 30 events verified" in capsys.readouterr().out
    assert main(["verify", str(uuid.uuid4())]) == 2
    assert "no session" in capsys.readouterr().err
    assert main(["verify", "not-a-uuid"]) == 2


def test_export_bundle_verifies_offline(
    client: TestClient,  # noqa: F811
    settings: Settings,
    keyring: LocalKeyring,  # noqa: F811
    engine: Engine,  # noqa: F811
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
    assert bundle["format"] == "auditagent-evidence-bundle" and bundle["version"] == 1
    assert bundle["verification"]["ok"] is True
    assert len(bundle["chain"]) == len(bundle["records"]) == 10
    assert bundle["records"][1]["record"]["text"].startswith("what is my balance")
    # Offline: no database and no keyring.
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(tmp_path / "empty"))

    def check(doc: object) -> tuple[int, str]:
        path = tmp_path / f"bundle-{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(doc))
        code = main(["verify", "--bundle", str(path)])
        return code, capsys.readouterr().out

    code, out = check(bundle)
    assert code == 0, out
    assert "1/1 bundles valid, 10 events verified" in out

    edited = json.loads(json.dumps(bundle))
    ct = edited["chain"][4]["ciphertext"]
    edited["chain"][4]["ciphertext"] = ("0" if ct[0] != "0" else "1") + ct[1:]
    code, out = check(edited)
    assert code == 1 and "first bad seq 4" in out

    truncated = json.loads(json.dumps(bundle))
    truncated["chain"].pop()
    code, out = check(truncated)
    assert code == 1 and "truncated" in out

    mismatched = json.loads(json.dumps(bundle))
    mismatched["records"][2]["kind"] = "user_utterance"
    code, out = check(mismatched)
    assert code == 1 and "does not match" in out

    code, out = check({"format": "something else"})
    assert code == 1 and "malformed bundle" in out
