"""A keyring that cannot unwrap the data keys says so where it matters, naming the key id:
`auditagent serve` refuses to start, a read is a 503 problem, analytics counts what it could
not read instead of pretending it read nothing."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from auditagent_api import create_app
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent.cli import main
from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.api import auth, make_token, record_conversation


def _serve() -> int:
    """`auditagent serve` on a port this test holds: should the keyring check not stop it,
    uvicorn fails to bind instead of serving forever."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        return main(["serve", "--port", str(held.getsockname()[1])])


@pytest.fixture
def stale_keyring(
    settings: Settings,
    keyring: LocalKeyring,
    tmp_path: Path,
) -> Iterator[LocalKeyring]:
    """A backup of the keyring taken before `keys rotate`: it lacks master key local:v2."""
    backup = tmp_path / "keyring-backup.json"
    shutil.copy2(settings.resolved_keyring_path, backup)
    keyring.rotate()
    yield LocalKeyring.load(backup)


def test_serve_refuses_a_keyring_that_cannot_unwrap_the_newest_data_key(
    settings: Settings,
    keyring: LocalKeyring,
    stale_keyring: LocalKeyring,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    record_conversation(settings, keyring, tenant=tenant)  # wrapped under local:v2
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("AUDITAGENT_KEYRING_PATH", str(stale_keyring.path))
    assert _serve() == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "'local:v2' is not in this keyring" in err and "restore the keyring" in err


def test_serve_refuses_another_keyring_file(
    settings: Settings,
    keyring: LocalKeyring,
    tenant: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    record_conversation(settings, keyring, tenant=tenant)
    other = LocalKeyring.init(tmp_path / "other" / "keyring.json")  # also has a "local:v1"
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("AUDITAGENT_KEYRING_PATH", str(other.path))
    assert _serve() == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "master key 'local:v1' of this keyring does not unwrap it" in err


@pytest.mark.parametrize("which", ["stale backup", "another keyring file"])
def test_reads_and_analytics_name_the_key_that_does_not_unwrap(
    which: str,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
    tmp_path: Path,
) -> None:
    if which == "stale backup":
        backup = tmp_path / "keyring-backup.json"
        shutil.copy2(settings.resolved_keyring_path, backup)
        keyring.rotate()
        served, says = LocalKeyring.load(backup), "master key 'local:v2' is not in this keyring"
    else:
        served = LocalKeyring.init(tmp_path / "other" / "keyring.json")
        says = "master key 'local:v1' of this keyring does not unwrap it"
    rec = record_conversation(settings, keyring, tenant=tenant)
    app = create_app(settings, engine=engine, key_provider=served)
    h = auth(make_token(engine, "auditor", tenant))
    with TestClient(app, raise_server_exceptions=False) as client:
        for route in ("transcript", "events", "export"):
            res = client.get(f"/v1/sessions/{rec.session_id}/{route}", headers=h)
            assert res.status_code == 503, (route, res.text)
            body = res.json()
            assert body["type"].endswith("/keyring-unavailable")
            assert says in body["detail"] and str(rec.session_id) in body["detail"]
            assert "auditagent verify" not in body["detail"]
            assert str(tmp_path) not in body["detail"]  # no server paths to a client
        # Analytics leaves the session out of its figures, and says so.
        body = client.get(f"/v1/analytics/latency?tenant={tenant}", headers=h).json()
        assert (body["sessions_scanned"], body["sessions_unreadable"]) == (0, 1)
        assert body["unreadable_master_keys"] == [says.split("'")[1]]


def test_analytics_counts_sessions_it_could_not_read(
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    good = record_conversation(settings, keyring, tenant=tenant)
    bad = record_conversation(settings, keyring, tenant=tenant)
    with psycopg.connect(db.libpq_url(settings.database_url or "")) as conn, conn.transaction():
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        conn.execute(
            "UPDATE events SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1)"
            " WHERE session_id = %s AND kind = 'turn_timing'",
            (bad.session_id,),
        )
        conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
    app = create_app(settings, engine=engine, key_provider=keyring)
    h = auth(make_token(engine, "auditor", tenant))
    with TestClient(app, raise_server_exceptions=False) as client:
        body = client.get(f"/v1/analytics/latency?tenant={tenant}", headers=h).json()
    assert (body["sessions_scanned"], body["sessions_unreadable"]) == (1, 1)
    assert good.session_id != bad.session_id
