"""The embedded default: no AUDITAGENT_DATABASE_URL, a Postgres started in the data directory.

Runs the same migrations and the same recorder code as the server path.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.helpers import assert_no_plaintext, read_records

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def embedded_dir() -> Iterator[Path]:
    # Not under pytest's basetemp: pytest resets /tmp/pytest-of-<user> to 0700 whenever another
    # run starts, which would lock the embedded server's service user out of its data directory.
    base = Path(tempfile.mkdtemp(prefix="auditagent-embedded-"))
    data = base / "data"
    yield data
    db.stop_embedded(data)
    shutil.rmtree(base, ignore_errors=True)


def test_cli_upgrade_on_embedded_default(embedded_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITAGENT_")}
    env["AUDITAGENT_DATA_DIR"] = str(embedded_dir)
    cli = [sys.executable, "-m", "auditagent.cli"]
    up = subprocess.run(
        [*cli, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert up.returncode == 0, up.stderr
    assert "is at revision" in up.stdout
    cur = subprocess.run(
        [*cli, "db", "current"], env=env, capture_output=True, text=True, timeout=120
    )
    assert cur.returncode == 0 and "current" in cur.stdout, cur.stderr
    mode = stat.S_IMODE(embedded_dir.stat().st_mode)
    assert not mode & (stat.S_IROTH | stat.S_IWOTH | stat.S_IRGRP | stat.S_IWGRP), oct(mode)


async def test_recorder_smoke_on_embedded_default(embedded_dir: Path) -> None:
    settings = Settings(data_dir=embedded_dir, flush_interval=0.05)
    kr = LocalKeyring.init(settings.resolved_keyring_path)
    url = db.resolve_database_url(settings)
    db.upgrade(settings, url=url)  # idempotent when the CLI test ran first
    async with AuditRecorder(settings) as recorder:
        h = recorder.open_session(tenant="embedded", participant="+15550001111")
        h.add(
            r.UserUtterance(at=datetime.now(timezone.utc), text="Embedded-Canary-3", source="stt")
        )
        h.close()
        await recorder.flush()
    got = read_records(url, h.session_id, kr)
    assert [x.kind for x in got] == ["opened", "user_utterance", "closed"]
    assert got[1].text == "Embedded-Canary-3"  # type: ignore[union-attr]
    assert_no_plaintext(url, settings.resolved_spool_dir, "Embedded-Canary-3", "+15550001111")
    for p in (settings.resolved_keyring_path,):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
