"""Rotation and rewrap against stored sessions: data keys move, ciphertext does not."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from auditagent import records as r
from auditagent.cli import main
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.helpers import read_records


async def test_rotate_then_rewrap_keeps_every_session_readable(
    make_database: Any,
    data_dir: Path,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Its own database: a real deployment has one keyring, the shared test database many.
    settings = Settings(database_url=make_database(), data_dir=data_dir, flush_interval=0.05)
    kr = LocalKeyring.init(settings.resolved_keyring_path)
    async with AuditRecorder(settings) as recorder:
        handles = []
        for i in range(3):
            h = recorder.open_session(tenant=tenant)
            h.add(r.UserUtterance(at=datetime.now(timezone.utc), text=f"hello {i}", source="stt"))
            h.close()
            handles.append(h)
        await recorder.flush()
    url = db.libpq_url(settings.database_url or "")
    sids = [h.session_id for h in handles]
    with psycopg.connect(url) as conn:
        before = conn.execute(
            "SELECT session_id, seq, ciphertext, hash FROM events WHERE session_id = ANY(%s)"
            " ORDER BY session_id, seq",
            (sids,),
        ).fetchall()
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(settings.data_dir))
    assert main(["keys", "rotate", "--no-reindex"]) == 0
    assert main(["keys", "rewrap"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("rewrapped ") and "local:v2" in out
    with psycopg.connect(url) as conn:
        masters = conn.execute(
            "SELECT DISTINCT master_key_id FROM data_keys WHERE session_id = ANY(%s)", (sids,)
        ).fetchall()
        after = conn.execute(
            "SELECT session_id, seq, ciphertext, hash FROM events WHERE session_id = ANY(%s)"
            " ORDER BY session_id, seq",
            (sids,),
        ).fetchall()
    assert masters == [("local:v2",)]
    assert after == before  # no event ciphertext touched
    fresh = LocalKeyring.load(settings.resolved_keyring_path)
    for i, h in enumerate(handles):
        recs = read_records(settings.database_url or "", h.session_id, fresh)
        assert recs[1].text == f"hello {i}"  # type: ignore[union-attr]
    # a second rewrap has nothing left to do
    assert main(["keys", "rewrap"]) == 0
    assert capsys.readouterr().out.startswith("rewrapped 0 ")
    del kr


def test_cli_errors_are_one_line_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    assert main(["db", "upgrade"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "AUDITAGENT_DATABASE_URL" in err
    # a missing keyring names the command that creates it
    assert main(["keys", "rewrap"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "auditagent keys init" in err
    # a keyring with loose permissions names the chmod
    assert main(["keys", "init"]) == 0
    keyring = tmp_path / "d" / "keyring.json"
    keyring.chmod(0o644)
    assert main(["keys", "rotate"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "chmod 600" in err
    # a URL that is not a Postgres URL
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", "notaurl")
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "AUDITAGENT_DATABASE_URL" in err and "postgresql://" in err
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    # a bad setting value
    monkeypatch.setenv("AUDITAGENT_TRANSCRIPTION_POLICY", "sometimes")
    assert main(["db", "current"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "AUDITAGENT_TRANSCRIPTION_POLICY" in err


async def test_rewrap_reports_keys_it_cannot_unwrap(
    make_database: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = make_database()
    foreign = Settings(database_url=url, data_dir=tmp_path / "other", flush_interval=0.05)
    LocalKeyring.init(foreign.resolved_keyring_path)
    async with AuditRecorder(foreign) as recorder:
        recorder.open_session(tenant="x").close()
        await recorder.flush()
    ours = Settings(database_url=url, data_dir=tmp_path / "ours")
    LocalKeyring.init(ours.resolved_keyring_path).rotate()
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", url)
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(ours.data_dir))
    assert main(["keys", "rewrap"]) == 1
    err = capsys.readouterr().err
    assert "could not be unwrapped" in err and err.count("\n") == 1
