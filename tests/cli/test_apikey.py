"""`auditagent apikey create | list | revoke`: the token is shown once and stored only hashed."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Engine

from auditagent.cli import main
from auditagent.settings import Settings
from auditagent.store import db, principals


@pytest.fixture(autouse=True)
def _db_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", settings.database_url or "")


def test_create_prints_token_last_and_stores_only_its_hash(
    settings: Settings,
    engine: Engine,
    tenant: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["apikey", "create", "--role", "auditor", "--tenant", tenant, "--name", "ann"]) == 0
    out = capsys.readouterr().out
    token = out.rstrip("\n").splitlines()[-1]
    assert token.startswith("aa_") and len(token) > 40
    principal = principals.authenticate(engine, token)
    assert principal is not None
    assert (principal.role, principal.tenant, principal.name) == ("auditor", tenant, "ann")
    with psycopg.connect(db.libpq_url(settings.database_url or "")) as conn:
        for row in conn.execute("SELECT * FROM principals"):
            for value in row:
                raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value)
                assert token not in str(raw)
                assert token.encode() != raw


def test_auditor_without_tenant_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apikey", "create", "--role", "auditor"]) == 2
    err = capsys.readouterr().err
    assert "needs a tenant" in err and "--tenant" in err
    assert "Traceback" not in err


def test_list_and_revoke(
    engine: Engine,
    tenant: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["apikey", "create", "--role", "admin", "--tenant", tenant]) == 0
    token = capsys.readouterr().out.rstrip("\n").splitlines()[-1]
    principal = principals.authenticate(engine, token)
    assert principal is not None
    assert main(["apikey", "list", "--tenant", tenant]) == 0
    listing = capsys.readouterr().out
    assert str(principal.id) in listing and "active" in listing
    assert token not in listing
    assert main(["apikey", "revoke", str(principal.id)]) == 0
    assert "revoked" in capsys.readouterr().out
    assert principals.authenticate(engine, token) is None
    assert main(["apikey", "list", "--tenant", tenant]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["apikey", "revoke", "nope"]) == 2
    assert "not a key id" in capsys.readouterr().err
    assert main(["apikey", "revoke", "00000000-0000-0000-0000-000000000000"]) == 2
    assert "no API key" in capsys.readouterr().err
