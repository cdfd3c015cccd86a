"""`auditagent search reindex` with progress, resuming after an interruption, and the
background reindex `auditagent keys rotate` starts."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from auditagent.cli import main
from auditagent.keys import LocalKeyring
from auditagent.search.reindex import reindex
from auditagent.settings import Settings
from auditagent.store import db
from tests.search.support import record


def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(settings.data_dir))


def _markers(settings: Settings, sids: list[uuid.UUID]) -> list[str | None]:
    with psycopg.connect(db.libpq_url(settings.database_url or "")) as conn:
        got = dict(
            conn.execute(
                "SELECT session_id, key_id FROM search_index_sessions WHERE session_id = ANY(%s)",
                (sids,),
            ).fetchall()
        )
    return [got.get(s) for s in sids]


def _running(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:  # already reaped by subprocess's own clean-up
        return False


def test_reindex_command_reports_progress_and_resumes(
    database_url: str,
    data_dir: Path,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    off = Settings(database_url=database_url, data_dir=data_dir, search_index=False)
    kr = LocalKeyring.init(off.resolved_keyring_path)
    sids = [record(off, kr, tenant=tenant, lines=[("user", f"osprey {i}")]) for i in range(3)]

    # An interrupted run (here: after its first one-session batch) keeps what it committed.
    def stop(done: int, total: int) -> None:
        if done == 1:
            raise KeyboardInterrupt

    engine = db.make_engine(off)
    try:
        with pytest.raises(KeyboardInterrupt):
            reindex(engine, kr, tenant=tenant, batch_size=1, progress=stop)
    finally:
        engine.dispose()
    assert _markers(off, sids).count("local:v1") == 1

    _env(monkeypatch, off)
    assert main(["search", "reindex", "--tenant", tenant]) == 0
    out, err = capsys.readouterr()
    assert "reindexed 0/2 sessions" in err and "reindexed 2/2 sessions" in err
    assert out.strip() == f"search index: 2 sessions indexed under local:v1 (tenant {tenant})"
    assert _markers(off, sids) == ["local:v1"] * 3


def test_keys_rotate_reindexes_in_the_background(
    make_database: object,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A database of its own: the background run takes every session it can open.
    settings = Settings(database_url=make_database(), data_dir=data_dir)  # type: ignore[operator]
    kr = LocalKeyring.init(settings.resolved_keyring_path)
    sids = [record(settings, kr, tenant="acme", lines=[("agent", "falcon")]) for _ in range(2)]
    assert _markers(settings, sids) == ["local:v1", "local:v1"]
    _env(monkeypatch, settings)
    assert main(["keys", "rotate"]) == 0
    out = capsys.readouterr().out
    found = re.search(r"in the background \(pid (\d+), log (.+?)\)", out)
    assert found, out
    pid = int(found.group(1))
    deadline = time.monotonic() + 60
    while _markers(settings, sids) != ["local:v2", "local:v2"]:
        assert time.monotonic() < deadline, Path(found.group(2)).read_text()
        time.sleep(0.1)
    while _running(pid):
        assert time.monotonic() < deadline, "the background reindex did not exit"
        time.sleep(0.1)
    assert "2 sessions indexed under local:v2" in Path(found.group(2)).read_text()
