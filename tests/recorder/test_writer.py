"""The write path below the recorder: batches and their two encodings, the SQL of one write
(ingest), and the writer's way through the spool back to the database — on a real Postgres."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from auditagent import records as r
from auditagent.integrity.checkpoints import ClosedSessionHead
from auditagent.keys import LocalKeyring
from auditagent.recorder.batch import SLICE_ITEMS, Batch, copy_stream, spool_stream
from auditagent.recorder.database import Database
from auditagent.recorder.ingest import SessionUpdate, encode_copy_binary, write_batch
from auditagent.recorder.intake import Inbox
from auditagent.recorder.recovery import Replayer, Route
from auditagent.recorder.sealing import SessionSealing
from auditagent.recorder.spool import FrameReader, Spool
from auditagent.recorder.writer import Writer
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.helpers import assert_no_plaintext, read_records
from tests.support.netproxy import TcpProxy, free_port

CANARY = "quetzalpumice"


def _inbox() -> Inbox:
    return Inbox(maxlen=10_000, wake_at=10_000, wake=lambda: None)


def _sealed(
    keyring: LocalKeyring, tenant: str, n: int, *, close: bool = True
) -> tuple[SessionSealing, Batch]:
    """A session sealed straight from its state: opened, ``n`` utterances, a tool, closed."""
    state = SessionSealing(
        keys=keyring, inbox=_inbox(), tenant=tenant, participant="+15550001111", labels={}
    )
    t0 = datetime.now(timezone.utc)
    recs: list[r.Record] = [r.Opened(at=t0, tenant=tenant, architecture="pipeline")]
    recs += [
        r.UserUtterance(at=t0 + timedelta(seconds=i), text=f"{CANARY} {i}", source="stt")
        for i in range(n)
    ]
    recs.append(r.ToolCall(at=t0, call_id="c1", name="lookup", arguments="{}"))
    if close:
        recs.append(r.Closed(at=t0 + timedelta(seconds=n), reason="user_initiated"))
    batch = Batch()
    opened = state.take_open()
    assert opened is not None and state.take_open() is None  # the row goes once
    batch.opens.append(opened)
    batch.started[state.session_id] = state.started_at
    batch.envelopes += [state.seal(x) for x in recs]
    batch.updates.append(state.update())
    return state, batch


def _row(url: str, session_id: uuid.UUID) -> tuple[object, ...] | None:
    with psycopg.connect(db.libpq_url(url)) as conn:
        return conn.execute(
            "SELECT event_count, head_hash, status, close_reason, tool_names,"
            " (SELECT count(*) FROM events e WHERE e.session_id = s.id)"
            " FROM sessions s WHERE id = %s",
            (session_id,),
        ).fetchone()


async def test_copy_stream_in_slices_is_the_one_encoding(keyring: LocalKeyring) -> None:
    _, batch = _sealed(keyring, "t-copy", 3 * SLICE_ITEMS + 5)
    assert await copy_stream(batch.envelopes, batch.started) == encode_copy_binary(
        batch.envelopes, batch.started
    )
    assert await copy_stream([], {}) == encode_copy_binary([], {})


async def test_batch_comes_back_from_its_spool_frames(keyring: LocalKeyring) -> None:
    _, batch = _sealed(keyring, "t-frames", 2 * SLICE_ITEMS)
    data = await spool_stream(batch)
    back = Batch()
    for tag, payload in FrameReader(data):
        back.add_frame(tag, payload)
    assert back.opens == batch.opens
    assert back.envelopes == batch.envelopes
    assert back.updates == batch.updates
    assert CANARY.encode() not in data  # sealed: the spool never holds the text


async def test_write_batch_then_an_idempotent_replay_stores_nothing_twice(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    state, batch = _sealed(keyring, tenant, 40)
    url = settings.database_url or ""
    async with await psycopg.AsyncConnection.connect(db.libpq_url(url)) as conn:
        closed = await write_batch(
            conn, opens=batch.opens, envelopes=batch.envelopes, updates=batch.updates
        )
        assert closed == {state.session_id}
        with pytest.raises(psycopg.errors.UniqueViolation):
            await write_batch(conn, envelopes=batch.envelopes, started=batch.started)
        # a spool replay of what an abandoned write already committed
        again = await write_batch(
            conn,
            opens=batch.opens,
            envelopes=batch.envelopes,
            updates=batch.updates,
            idempotent=True,
        )
    assert again == {state.session_id}
    n = len(batch.envelopes)
    assert _row(url, state.session_id) == (
        n,
        state.prev_hash,
        "closed",
        "user_initiated",
        ["lookup"],
        n,
    )
    got = read_records(url, state.session_id, keyring)
    assert [x.kind for x in got] == [e.kind for e in batch.envelopes]


async def test_replayed_updates_never_move_a_session_back(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """Updates are monotonic, and several of one session in one replay are merged."""
    state, batch = _sealed(keyring, tenant, 3, close=False)
    url = settings.database_url or ""
    head = state.prev_hash
    older = SessionUpdate(session_id=state.session_id, event_count=2, head_hash=bytes(32))
    later = SessionUpdate(
        session_id=state.session_id,
        event_count=5,
        head_hash=head,
        tool_names=["zeta"],
        ended_at=datetime.now(timezone.utc),
        close_reason="job_shutdown",
    )
    async with await psycopg.AsyncConnection.connect(db.libpq_url(url)) as conn:
        await write_batch(conn, opens=batch.opens, updates=[later, older], idempotent=True)
        closed = await write_batch(conn, updates=[older], idempotent=True)
    assert closed == set()  # an update that closes nothing reports no close
    count, got_head, status, reason, tools, _ = _row(url, state.session_id) or ()
    assert (count, got_head, status, reason, tools) == (5, head, "closed", "job_shutdown", ["zeta"])


async def _until(deadline_s: float, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met before the deadline")


async def test_writer_spools_while_the_database_is_down_then_replays_it(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """Started with the database marked down: every batch goes to the spool, and the replay
    (due a second later) brings them to the database in order, and signs the closed head."""
    url = settings.database_url or ""
    heads: list[ClosedSessionHead] = []

    def on_closed(got: Sequence[ClosedSessionHead]) -> None:
        heads.extend(got)

    # The writer reaches the database through a proxy that is not listening yet: the database
    # is really down (not only marked so) until the proxy starts, however slow this machine is.
    proxy, proxied = _not_listening_proxy(url)
    writer = Writer(settings)
    writer.start(url=proxied, db_down=True, on_sessions_closed=on_closed)
    try:
        state = SessionSealing(
            keys=keyring, inbox=writer.inbox, tenant=tenant, participant=None, labels={}
        )
        writer.register(state)
        t0 = datetime.now(timezone.utc)
        state.intake.add(r.Opened(at=t0, tenant=tenant, architecture="pipeline"))
        for i in range(30):
            state.intake.add(r.UserUtterance(at=t0, text=f"{CANARY} {i}", source="stt"))
            if i % 10 == 9:
                await writer.flush(10)  # three batches, each to the spool
        spool_dir = settings.resolved_spool_dir
        assert any(spool_dir.iterdir()) and _row(url, state.session_id) is None
        state.intake.add(r.Closed(at=t0, reason="user_initiated"))
        await writer.flush(10)
        await proxy.start()  # the database is back: the next replay attempt brings it all in
        await _until(20, lambda: (_row(url, state.session_id) or (0,))[0] == 32)
        await _until(10, lambda: bool(heads))
    finally:
        await writer.stop()
        await proxy.stop()
    assert writer.open_sessions() == []  # a closed session leaves the writer's registry
    got = read_records(url, state.session_id, keyring)
    assert [x.kind for x in got] == ["opened", *["user_utterance"] * 30, "closed"]
    assert heads == [ClosedSessionHead(state.session_id, 32, state.prev_hash)]
    assert_no_plaintext(url, spool_dir, CANARY)
    assert not list(Path(spool_dir).glob("*.spool"))  # replayed files are gone


async def test_events_past_the_queue_bound_are_sealed_as_one_gap(
    database_url: str, data_dir: Path, tenant: str
) -> None:
    settings = Settings(
        database_url=database_url, data_dir=data_dir, flush_interval=0.05, queue_size=100
    )
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    writer = Writer(settings)
    writer.start(url=db.libpq_url(database_url), db_down=False, on_sessions_closed=None)
    try:
        state = SessionSealing(
            keys=keyring, inbox=writer.inbox, tenant=tenant, participant=None, labels={}
        )
        writer.register(state)
        t0 = datetime.now(timezone.utc)
        # all at once, no await: the writer cannot take any off the queue meanwhile
        for i in range(settings.queue_size + 7):
            state.intake.put(("__record__", r.Notice(at=t0, code="n", message=str(i)), 1.0))
        await writer.flush(10)
        state.intake.add(r.Closed(at=t0, reason="done"))
        await writer.flush(10)
    finally:
        await writer.stop()
    got = read_records(database_url, state.session_id, keyring)
    gaps = [x for x in got if isinstance(x, r.Gap)]
    assert [(g.count, "queue full" in g.reason) for g in gaps] == [(7, True)]
    assert len(got) == settings.queue_size + 2


def _waiting_copies(url: str) -> int:
    with psycopg.connect(db.libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'auditagent-recorder' AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def _recorder_tasks() -> list[asyncio.Task[object]]:
    return [
        t
        for t in asyncio.all_tasks()
        if not t.done() and "auditagent/recorder" in t.get_coro().cr_code.co_filename
    ]


async def _replay_stopped_midway(settings: Settings, url: str) -> None:
    """What the writer does at close, with a replay running: finish it (bounded), then stop
    the writes nobody waits for. Its own frame, so that nothing of it outlives the call."""
    database = Database(url, timeout=30.0)
    spool = Spool(settings.resolved_spool_dir)
    replayer = Replayer(
        spool=spool,
        route=Route(settings.resolved_spool_dir),
        database=database,
        on_committed=lambda _b, _c: None,
    )
    replayer.start()
    await _until(20, lambda: _waiting_copies(settings.database_url or "") > 0)
    await replayer.finish(0.1)
    await database.stop_abandoned()
    spool.close()


async def test_closing_during_a_replay_loses_nothing_and_leaves_no_unobserved_failure(
    database_url: str, data_dir: Path, tenant: str
) -> None:
    """A replay of a spool file is stopped (the recorder closes) while a chunk's COPY waits on
    the database (a lock holds it): the chunk's write keeps its connection (closing it under
    the write made it fail in epoll, "Task exception was never retrieved"), nothing of the
    recorder is left running, every failure is observed, the file stays, and the next
    recorder replays every record."""
    settings = Settings(
        database_url=database_url, data_dir=data_dir, flush_interval=0.05, db_timeout=1.0
    )
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    url = db.libpq_url(database_url)
    loop = asyncio.get_running_loop()
    unobserved: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: unobserved.append(ctx))

    # 1. The database is unreachable: everything goes to the spool and stays there.
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    first = Writer(settings)
    first.start(url=nowhere, db_down=True, on_sessions_closed=None)
    state = SessionSealing(
        keys=keyring, inbox=first.inbox, tenant=tenant, participant=None, labels={}
    )
    first.register(state)
    t0 = datetime.now(timezone.utc)
    state.intake.add(r.Opened(at=t0, tenant=tenant, architecture="pipeline"))
    for i in range(1200):
        state.intake.add(r.UserUtterance(at=t0, text=f"{CANARY} {i}", source="stt"))
    state.intake.add(r.Closed(at=t0, reason="user_initiated"))
    await first.flush(20)
    await first.stop()
    assert list(settings.resolved_spool_dir.glob("*.spool"))

    # 2. A replay of it is stopped (as at close) while a lock holds a chunk's COPY.
    blocker = psycopg.connect(url)
    blocker.execute("LOCK TABLE events IN SHARE MODE")
    try:
        await _replay_stopped_midway(settings, url)
        await _until(10, lambda: not _recorder_tasks())
    finally:
        blocker.rollback()
        blocker.close()
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(previous)
    assert unobserved == []
    assert (_row(database_url, state.session_id) or (0,))[0] == 0  # nothing got through
    assert list(settings.resolved_spool_dir.glob("*.spool"))

    # 3. And the one after that stores every record, once.
    third = Writer(settings)
    third.start(url=url, db_down=False, on_sessions_closed=None)
    try:
        await _until(30, lambda: (_row(database_url, state.session_id) or (0,))[0] == 1202)
    finally:
        await third.stop()
    got = read_records(database_url, state.session_id, keyring)
    assert [x.kind for x in got] == ["opened", *["user_utterance"] * 1200, "closed"]
    assert not list(settings.resolved_spool_dir.glob("*.spool"))


def _not_listening_proxy(url: str) -> tuple[TcpProxy, str]:
    """A proxy to the database at ``url`` that listens only once started, and the URL through it."""
    target = urlsplit(db.libpq_url(url))
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    return proxy, urlunsplit(target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}"))


async def test_a_graceful_close_replays_what_a_slow_database_sent_to_the_spool(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """Batches spooled while the database was away are in the database after ``stop()`` once it
    answers again, without waiting for the next replay attempt; the spool is left empty."""
    url = settings.database_url or ""
    proxy, proxied = _not_listening_proxy(url)
    writer = Writer(settings)
    writer.start(url=proxied, db_down=True, on_sessions_closed=lambda heads: None)
    try:
        state = SessionSealing(
            keys=keyring, inbox=writer.inbox, tenant=tenant, participant=None, labels={}
        )
        writer.register(state)
        t0 = datetime.now(timezone.utc)
        state.intake.add(r.Opened(at=t0, tenant=tenant, architecture="pipeline"))
        for i in range(5):
            state.intake.add(r.UserUtterance(at=t0, text=f"{CANARY} {i}", source="stt"))
        state.intake.add(r.Closed(at=t0, reason="user_initiated"))
        await writer.flush(10)
        spool_dir = settings.resolved_spool_dir
        assert list(Path(spool_dir).glob("*.spool")) and _row(url, state.session_id) is None
        await proxy.start()
    finally:
        await writer.stop()
        await proxy.stop()
    got = read_records(url, state.session_id, keyring)
    assert [x.kind for x in got] == ["opened", *["user_utterance"] * 5, "closed"]
    assert not list(Path(spool_dir).glob("*.spool"))
    assert_no_plaintext(url, spool_dir, CANARY)
