"""Durable within a second, whatever the database does: a database that *hangs* (SIGSTOP of
every process of a private Postgres server: connections are accepted, nothing is answered) and
agent processes SIGKILLed 2 s, 5 s and 9 s into the hang. After SIGCONT and a replay of the
spool they left, every record handed over more than a second before its process died is in the
database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db
from tests.support import ROOT
from tests.support.helpers import read_records
from tests.support.private_pg import private_postgres

CANARY = "zanzibarquokka"

# A job process: a recorder and a session fed at a steady rate (~50 records/s). Each line it
# prints says a record was handed to the recorder (``rec.add`` returned) and when.
AGENT = textwrap.dedent(
    """
    import asyncio, sys, time, uuid
    from datetime import datetime, timezone
    from auditagent import records as r
    from auditagent.recorder import AuditRecorder
    from auditagent.settings import Settings

    async def main():
        url, data_dir, tenant, sid, canary = sys.argv[1:6]
        rec = await AuditRecorder(Settings(database_url=url, data_dir=data_dir)).start()
        h = rec.open_session(tenant=tenant, session_id=uuid.UUID(sid))
        i = 0
        while True:
            h.add(r.UserUtterance(at=datetime.now(timezone.utc), text=f"turn {i} {canary}",
                                  source="stt"))
            sys.stdout.write(f"{i} {time.time()}\\n")
            sys.stdout.flush()
            i += 1
            await asyncio.sleep(0.02)

    asyncio.run(main())
    """
)

KILL_AFTER = (2.0, 5.0, 9.0)


class Agent:
    def __init__(self, url: str, data_dir: Path, tenant: str) -> None:
        self.session_id = uuid.uuid4()
        self.handed: list[tuple[int, float]] = []
        self.killed_at: float | None = None
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                AGENT,
                url,
                str(data_dir),
                tenant,
                str(self.session_id),
                CANARY,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            i, t = line.split()
            self.handed.append((int(i), float(t)))

    def kill(self) -> None:
        self.killed_at = time.time()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)


def _committed(url: str, session_id: uuid.UUID) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE session_id = %s", (session_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def _wait_for(what: str, cond: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_records_survive_a_hung_database_and_a_killed_process(tmp_path: Path) -> None:
    with private_postgres() as pg:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE audit")
        url = pg.url("audit")
        settings = Settings(database_url=url, data_dir=tmp_path / "data")
        db.upgrade(settings, url=db.sqlalchemy_url(url))
        keyring = LocalKeyring.init(settings.resolved_keyring_path)
        agents = [Agent(url, settings.data_dir, f"t-{n}") for n in range(len(KILL_AFTER))]
        try:
            # Every agent is connected and writing when the server freezes.
            for a in agents:
                _wait_for("first commit", lambda a=a: _committed(url, a.session_id) > 0, 90)
            pg.signal_all(signal.SIGSTOP)
            hung_at = time.time()
            for a, after in zip(agents, KILL_AFTER, strict=True):
                time.sleep(max(0.0, hung_at + after - time.time()))
                a.kill()
        finally:
            pg.signal_all(signal.SIGCONT)
            for a in agents:
                if a.proc.poll() is None:
                    a.proc.kill()
                    a.proc.wait()

        # A new process replays what the killed ones left in the spool.
        async def replay() -> None:
            async with AuditRecorder(settings, key_provider=keyring) as rec:
                await rec.flush()

        asyncio.run(replay())
        assert not list(settings.resolved_spool_dir.glob("*.spool"))

        for a, after in zip(agents, KILL_AFTER, strict=True):
            assert a.killed_at is not None
            got = read_records(url, a.session_id, keyring)  # also checks the chain
            stored = {int(x.text.split()[1]) for x in got if x.kind == "user_utterance"}  # type: ignore[union-attr]
            assert all(CANARY in x.text for x in got if x.kind == "user_utterance")  # type: ignore[union-attr]
            must = [i for i, t in a.handed if t < a.killed_at - 1.0]
            during_hang = [i for i, t in a.handed if hung_at <= t < a.killed_at - 1.0]
            # The agent kept handing records over during the hang, at its steady rate.
            assert len(during_hang) >= 20 * (after - 1), (after, len(during_hang))
            missing = sorted(set(must) - stored)
            assert not missing, (
                f"killed {after} s into the hang: {len(missing)} of {len(must)} records handed "
                f"over more than 1 s before the kill are missing (first {missing[:5]})"
            )
