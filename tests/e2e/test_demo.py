"""`auditagent demo`: records the four seed systems, prints a token, serves them over HTTP."""

from __future__ import annotations

import os
import re
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
        ui_lines = [proc.stdout.readline().rstrip("\n") for _ in range(2)]
        assert ui_lines[0].startswith(f"review UI: http://127.0.0.1:{port}/ui/"), ui_lines
        ui_token = ui_lines[1]
        assert ui_token.startswith("aao_"), ui_lines
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
        _sign_in_once(f"http://127.0.0.1:{port}", ui_token, one)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _sign_in_once(base: str, ui_token: str, session_id: str) -> None:
    """The printed one-time token signs in to the review UI once, and only once."""
    with httpx.Client(base_url=base, timeout=10) as browser:
        form = browser.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
        assert csrf, form.text
        signed = browser.post("/ui/login", data={"token": ui_token, "csrf": csrf.group(1)})
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/sessions"
        page = browser.get(f"/ui/sessions/{session_id}")
        assert page.status_code == 200 and "Verified" in page.text
    with httpx.Client(base_url=base, timeout=10) as again:
        form = again.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
        assert csrf
        second = again.post("/ui/login", data={"token": ui_token, "csrf": csrf.group(1)})
        assert second.status_code == 401, second.text
