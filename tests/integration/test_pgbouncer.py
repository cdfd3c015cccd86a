"""Through a transaction-pooling PgBouncer (Debian's 1.18: no protocol-level prepared
statements): many recorders share a pool of two server connections and lose nothing; a
retention run's liveness lock holds and frees as it does directly; a spool replay leaves
nothing behind on the server connection the next client gets. Each test starts a private
PgBouncer of its own (tests/support/pgbouncer.py) so the pool size is the test's."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db
from auditagent.store import runs as store
from tests.support.databases import ADMIN_URL
from tests.support.helpers import read_records
from tests.support.netproxy import free_port
from tests.support.pgbouncer import PrivatePgBouncer, private_pgbouncer

CANARY = "quetzalmarmot"


def _direct(url: str) -> str:
    """The server-side URL of a database the fixtures made (they may hand out a pooled one)."""
    admin = make_url(ADMIN_URL)
    return make_url(url).set(host=admin.host, port=admin.port).render_as_string(hide_password=False)


def _wait_for(what: str, cond: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_fixtures_route_through_the_pooler_when_asked(
    pooler: PrivatePgBouncer | None, database_url: str
) -> None:
    port = make_url(database_url).port
    if pooler is None:
        assert port == make_url(ADMIN_URL).port
    else:
        assert port == pooler.port
        assert pooler.server_connections(make_url(database_url).database or "") <= (
            pooler.pool_size
        )


def test_many_recorders_share_two_server_connections_and_lose_nothing(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    direct = _direct(make_database())
    dbname = make_url(direct).database or ""
    calls, per_call = 24, 40
    with private_pgbouncer(ADMIN_URL, pool_size=2) as bouncer:
        settings = Settings(
            database_url=bouncer.route(direct), data_dir=tmp_path / "data", flush_interval=0.02
        )
        keyring = LocalKeyring.init(settings.resolved_keyring_path)
        peak = 0

        async def call(n: int) -> uuid.UUID:
            # One recorder per call, as one LiveKit job process each holds one.
            async with AuditRecorder(settings, key_provider=keyring) as rec:
                s = rec.open_session(tenant=f"t-{n}", participant=f"caller-{n}")
                for i in range(per_call):
                    s.add(
                        r.UserUtterance(
                            at=datetime.now(timezone.utc), text=f"{i} {CANARY}", source="stt"
                        )
                    )
                    await asyncio.sleep(0.005)
                s.close(reason="done")
                await rec.flush()
                return s.session_id

        async def main() -> list[uuid.UUID]:
            nonlocal peak
            tasks = [asyncio.create_task(call(n)) for n in range(calls)]
            while not all(t.done() for t in tasks):
                servers = await asyncio.to_thread(bouncer.server_connections, dbname)
                peak = max(peak, servers)
                await asyncio.sleep(0.05)
            return [t.result() for t in tasks]

        ids = asyncio.run(main())
        assert 1 <= peak <= 2
        assert not list(settings.resolved_spool_dir.glob("*.spool"))
    for sid in ids:
        got = read_records(direct, sid, keyring)  # also checks the chain: no gap, no reorder
        texts = [x.text for x in got if x.kind == "user_utterance"]  # type: ignore[union-attr]
        assert texts == [f"{i} {CANARY}" for i in range(per_call)]


# A retention run's liveness lock held by a process of its own, as `auditagent retention run`
# holds it, until killed.
HOLDER = textwrap.dedent(
    """
    import sys, time, uuid
    from auditagent.settings import Settings
    from auditagent.store import db
    from auditagent.store import runs as store
    url, run_id = sys.argv[1], uuid.UUID(sys.argv[2])
    engine = db.make_engine(Settings(database_url=url, data_dir="/nonexistent"))
    lock = store.RunLock(engine, run_id)
    store.start_run(engine, dry_run=False, tenant=None, trigger="cli", requested_by=None,
                    reason=None, run_id=run_id)
    print("running", flush=True)
    time.sleep(600)
    """
)


def test_a_live_run_stays_running_and_a_killed_one_is_marked_interrupted(
    make_database: Callable[[], str],
) -> None:
    direct = _direct(make_database())
    with private_pgbouncer(ADMIN_URL, pool_size=2) as bouncer:
        url = bouncer.route(direct)
        run_id = uuid.uuid4()
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url, str(run_id)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        engine = db.make_engine(Settings(database_url=url, data_dir=Path("/nonexistent")))
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "running"
            # Many checks, on whichever server connection the pooler lends: a lock left on a
            # pooled server connection (session-level) would be taken by one of them.
            for _ in range(10):
                assert store.mark_dead_runs_interrupted(engine) == []
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            marked: list[uuid.UUID] = []

            def dead() -> bool:
                marked.extend(store.mark_dead_runs_interrupted(engine))
                return bool(marked)

            _wait_for("the killed run to be marked interrupted", dead, 15)
            assert marked == [run_id]
            assert store.get_run(engine, run_id).status == "interrupted"
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait()
            engine.dispose()


def test_spool_replays_leave_nothing_on_the_pooled_server_connection(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    direct = _direct(make_database())
    data_dir = tmp_path / "data"
    keyring = LocalKeyring.init(Settings(data_dir=data_dir).resolved_keyring_path)
    nowhere = make_url(direct).set(host="127.0.0.1", port=free_port())
    offline = Settings(
        database_url=nowhere.render_as_string(hide_password=False),
        data_dir=data_dir,
        db_timeout=1.0,
    )
    with private_pgbouncer(ADMIN_URL, pool_size=1) as bouncer:
        online = Settings(database_url=bouncer.route(direct), data_dir=data_dir)
        ids = []
        for n in range(2):

            async def spool_then_replay(n: int = n) -> uuid.UUID:
                async with AuditRecorder(offline, key_provider=keyring) as rec:
                    s = rec.open_session(tenant=f"t-{n}")
                    for i in range(5):
                        s.add(
                            r.UserUtterance(
                                at=datetime.now(timezone.utc), text=f"{i}", source="stt"
                            )
                        )
                    s.close(reason="done")
                assert list(data_dir.glob("spool/*.spool"))
                # The replay goes through a staging table (it may repeat committed rows).
                async with AuditRecorder(online, key_provider=keyring) as rec:
                    await rec.flush()
                assert not list(data_dir.glob("spool/*.spool"))
                return s.session_id

            ids.append(asyncio.run(spool_then_replay()))
        # One server connection served both replays; the staging table went with each commit.
        with psycopg.connect(db.libpq_url(bouncer.route(direct)), prepare_threshold=None) as conn:
            left = conn.execute(
                "SELECT count(*) FROM pg_class WHERE relname = 'events_stage'"
            ).fetchone()
        assert left == (0,)
    for sid in ids:
        assert len(read_records(direct, sid, keyring)) == 7
