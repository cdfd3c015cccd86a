"""What a new user trips over around `auditagent demo` and the CLI itself (no recording here;
the full demo run is tests/test_demo.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from auditagent import __version__
from auditagent.cli import demo
from auditagent.settings import Settings
from auditagent.store import admin, db


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITAGENT_")}
    env.update(extra)
    return env


def test_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "auditagent.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"auditagent {__version__}"


def test_demo_refuses_a_taken_port_before_recording(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    url = make_database()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "auditagent.cli", "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(AUDITAGENT_DATABASE_URL=url, AUDITAGENT_DATA_DIR=str(tmp_path / "data")),
        )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert lines == [
        f"auditagent: port {port} on 127.0.0.1 is already in use; "
        "pass --port N (or set AUDITAGENT_API_PORT), or --no-serve"
    ], out.stderr
    # refused before anything was recorded (recording takes half a minute)
    assert "recorded" not in out.stdout and "database:" not in out.stdout
    assert time.monotonic() - t0 < 30


def test_a_second_demo_run_revokes_the_first_runs_admin_key(settings: Settings) -> None:
    engine = db.make_engine(settings)
    try:
        first, revoked = demo._fresh_admin_key(engine)
        assert admin.authenticate(engine, first) is not None
        second, revoked = demo._fresh_admin_key(engine)
        assert revoked >= 1
        assert admin.authenticate(engine, first) is None
        assert admin.authenticate(engine, second) is not None
        live = [
            p
            for p in admin.list_principals(engine)
            if p.name == demo.DEMO_KEY_NAME and p.revoked_at is None
        ]
        assert len(live) == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("serve", [True, False])
def test_no_serve_prints_no_url(serve: bool) -> None:
    lines = demo._next_steps(host="127.0.0.1", port=8123, serve=serve, revoked=0)
    assert any("http://" in line for line in lines) is serve
