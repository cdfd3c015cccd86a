"""`auditagent serve` as a real subprocess over HTTP, and its refusal of an old schema."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import Engine

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.api import CANARY, make_token, record_conversation


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITAGENT_")}
    env["AUDITAGENT_DATABASE_URL"] = url
    env["AUDITAGENT_DATA_DIR"] = str(data_dir)
    return env


def _cli() -> list[str]:
    return [sys.executable, "-c", "from auditagent.cli import run; run()"]


@pytest.mark.slow
def test_serve_over_http(
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    token = make_token(engine, "auditor", tenant)
    port = _free_port()
    proc = subprocess.Popen(
        [*_cli(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(settings.database_url or "", settings.data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        h = {"Authorization": f"Bearer {token}", "X-Audit-Reason": "serve test"}
        res = httpx.get(f"{base}/v1/sessions/{rec.session_id}/transcript", headers=h, timeout=10)
        assert res.status_code == 200
        assert any(CANARY in (e.get("text") or "") for e in res.json()["entries"])
        res = httpx.get(f"{base}/v1/sessions/{rec.session_id}/transcript", timeout=10)
        assert res.status_code == 401
        assert res.headers["content-type"].startswith("application/problem+json")
        assert "auditagent_api_request_seconds" in httpx.get(f"{base}/metrics", timeout=10).text
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_serve_refuses_an_out_of_date_schema(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    url = make_database()
    with psycopg.connect(db.libpq_url(url)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000_old'")
    LocalKeyring.init(tmp_path / "keyring.json")
    res = subprocess.run(
        [*_cli(), "serve", "--port", str(_free_port())],
        env=_env(url, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert "auditagent db upgrade" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr
