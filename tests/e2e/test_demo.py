"""`auditagent demo`: records the four seed systems, prints a token, serves them over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.netproxy import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_demo_records_seed_systems_and_serves_them(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITAGENT_")}
    env.update(
        AUDITAGENT_DATABASE_URL=make_database(),
        AUDITAGENT_DATA_DIR=str(tmp_path / "data"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditagent.cli", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        token = None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if lines[-2:-1] == ["admin token (shown once):"]:
                token = lines[-1]
                break
            assert time.monotonic() < deadline, "\n".join(lines)
        assert token and token.startswith("aa_"), "\n".join(lines)
        text = "\n".join(lines)
        assert "recorded 4/4 seed systems" in text
        for system in ("pipeline-deepgram", "pipeline-whisper", "openai-realtime", "gemini-live"):
            assert f"recorded {system}" in text
        assert f"http://127.0.0.1:{port}/docs" in text
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/sessions", headers=headers, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo's server did not answer"
                time.sleep(0.2)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert {i["architecture"] for i in items} == {"pipeline", "realtime"}
        assert len(items) == 4
        one = items[0]["id"]
        t = httpx.get(f"http://127.0.0.1:{port}/v1/sessions/{one}/transcript", headers=headers)
        assert t.status_code == 200 and any(e["kind"] == "user" for e in t.json()["entries"])
        v = httpx.get(f"http://127.0.0.1:{port}/v1/sessions/{one}/verify", headers=headers)
        assert v.json()["ok"] is True
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
