"""The review API's /docs page, rendered by a real headless Chromium against `auditagent serve`.

The page must work on an isolated network: every asset comes from the server itself, and the
browser is started with background networking off so a CDN fetch would simply fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from tests.support.netproxy import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _require_browser() -> str:
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail("CI must run the browser check: .ci/run installs Debian's chromium")
    pytest.skip("no chromium on this machine: apt-get install chromium to run the browser check")


@pytest.fixture
def served(settings: Settings, make_database: Callable[[], str], tmp_path: Path) -> object:
    LocalKeyring.init(settings.resolved_keyring_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITAGENT_")}
    env.update(
        # A database of its own: serve refuses a keyring that cannot unwrap the newest data
        # key, and the shared test database holds keys of many other tests' keyrings.
        AUDITAGENT_DATABASE_URL=make_database(),
        AUDITAGENT_DATA_DIR=str(settings.data_dir),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditagent.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a loaded 2-core box takes ~20 s to import the app
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_docs_assets_are_local(served: str) -> None:
    html = httpx.get(f"{served}/docs").text
    assert "cdn" not in html.lower() and "http" not in html.replace(served, "").split("<body")[1]
    for asset in ("/_docs/swagger-ui-bundle.js", "/_docs/swagger-ui.css"):
        assert asset in html
        assert httpx.get(f"{served}{asset}").status_code == 200


def test_docs_page_renders_in_a_real_browser(served: str, tmp_path: Path) -> None:
    browser = _require_browser()
    args = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=15000",
    ]
    dom = subprocess.run(
        [*args, "--dump-dom", f"{served}/docs"], capture_output=True, text=True, timeout=120
    ).stdout
    # Swagger UI fetched /openapi.json and rendered the operations: only JavaScript that ran
    # against our own assets can have put these into the DOM.
    assert "auditagent review API" in dom
    assert "/v1/sessions/{session_id}/transcript" in dom
    assert "/v1/access-log" in dom
    assert "Failed to load API definition" not in dom
    shot = tmp_path / "docs.png"
    subprocess.run(
        [*args, "--window-size=1280,900", f"--screenshot={shot}", f"{served}/docs"],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
