"""Upgrading a database that already holds calls to partitioned ``events`` (migration 0016):
the previous release's own recorder writes sessions at revision 0017 (this month's and an
older month's), the upgrade moves them, and every chain, checkpoint and transcript still
verifies — then today's recorder writes on top and a retention run drops the old month."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from auditagent import retention
from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from tests.support import retention as rs
from tests.support.databases import create_database, drop_database, server_url
from tests.support.pgbouncer import PrivatePgBouncer

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = "migrations/versions/20261126_0016_partitioned_events.py"

OLD_RECORDER = """
import json, sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from auditagent.keys import LocalKeyring
from auditagent.recorder import clock
from auditagent.settings import Settings
from tests.support.retention import record_sessions

url, data = sys.argv[1:3]
settings = Settings(database_url=url, data_dir=Path(data))
keys = LocalKeyring.load(settings.resolved_keyring_path)
out = {}
for days in (40, 0):
    at = datetime.now(timezone.utc) - timedelta(days=days)
    clock.utcnow = lambda at=at: at
    done = record_sessions(settings, keys, [("acme", "p1", "intake"), ("acme", "p2", "billing")],
                           ended_days_ago=max(days - 1, 0))
    out[days] = [str(s.session_id) for s in done]
print(json.dumps(out))
"""


def _previous_release(tmp: Path) -> Path:
    """The code as it was before migration 0016 (its parent commit), unpacked."""
    try:
        added = subprocess.run(
            ["git", "log", "--diff-filter=A", "--format=%H", "--", MIGRATION],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        added = []
    if not added:
        pytest.skip("needs the repository's git history (the release before migration 0016)")
    tar = tmp / "old.tar"
    subprocess.run(
        ["git", "archive", "-o", str(tar), f"{added[-1]}^", "auditagent", "tests", "migrations"],
        cwd=ROOT,
        check=True,
    )
    out = tmp / "old"
    with tarfile.open(tar) as t:
        t.extractall(out, filter="data")
    # Its own migrations, ahead of the installed ones on the path: it must see 0017 as head.
    (out / "auditagent_migrations").symlink_to(out / "migrations")
    return out


@pytest.fixture
def at_0017(pooler: PrivatePgBouncer | None, tmp_path: Path) -> Iterator[Settings]:
    name = create_database()
    url = db.sqlalchemy_url(server_url(name))
    if pooler is not None:
        url = pooler.route(url)
    settings = Settings(
        database_url=url,
        data_dir=tmp_path / "data",
        retention_default_days=30,
        retention_floor_days=7,
    )
    db.upgrade(settings, url=url, revision="0017")
    try:
        yield settings
    finally:
        drop_database(name)


def test_an_existing_database_upgrades_to_partitioned_events(
    at_0017: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = at_0017
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    old = _previous_release(tmp_path)
    assert settings.database_url
    proc = subprocess.run(
        [sys.executable, "-c", OLD_RECORDER, settings.database_url, str(settings.data_dir)],
        cwd=old,
        env={**os.environ, "PYTHONPATH": str(old)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = {int(k): [uuid.UUID(s) for s in v] for k, v in json.loads(proc.stdout).items()}
    before = rs.sql_rows(settings, "SELECT session_id, seq, hash FROM events ORDER BY 1, 2")
    assert len(before) == 4 * 5

    assert db.upgrade(settings, url=settings.database_url) == db.head_revision()

    assert rs.sql_rows(
        settings, "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'events'::regclass"
    ) == [("r",)]
    after = rs.sql_rows(settings, "SELECT session_id, seq, hash FROM events ORDER BY 1, 2")
    assert after == before
    placed = rs.sql_rows(
        settings,
        "SELECT e.tableoid::regclass::text, e.session_id FROM events e "
        "JOIN sessions s ON s.id = e.session_id AND s.started_at = e.session_started_at "
        "GROUP BY 1, 2",
    )
    parts = {sid: part for part, sid in placed}
    assert set(parts) == {*written[40], *written[0]}  # every row carries its session's start
    assert "events_default" not in parts.values()
    assert parts[written[40][0]] != parts[written[0][0]]  # two months, two partitions

    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(settings.data_dir))
    code, out = rs.verify_all(settings, capsys)
    assert code == 0, out

    # Today's recorder writes on top; a retention run then drops the old month whole.
    (new,) = rs.record_sessions(settings, keyring, [("acme", "p3", "intake")])
    engine: Engine = db.make_engine(settings)
    try:
        report = retention.run_retention(engine, settings)
    finally:
        engine.dispose()
    assert report.ok and len(report.months_dropped) == 1, report.summary()
    assert {r[1] for r in rs.deletion_rows(settings)} == set(written[40])
    for sid in written[0] + [new.session_id]:
        assert rs.state(settings, sid) == ("closed", 5, True)
    code, out = rs.verify_all(settings, capsys)
    assert code == 0, out
