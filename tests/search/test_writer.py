"""The recorder's writer indexes as it stores: directly, through the spool, or not at all."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.search import parse_query, search
from auditagent.search import writer as search_writer
from auditagent.search.beacons import BeaconKey
from auditagent.search.reindex import reindex
from auditagent.search.writer import HANDOVER_AFTER_S, SessionIndexer
from auditagent.settings import Settings
from auditagent.store import db
from auditagent.store.search_rows import IndexRows
from tests.search.support import record
from tests.support.helpers import assert_no_plaintext


def _found(settings: Settings, kr: LocalKeyring, tenant: str, q: str) -> list[uuid.UUID]:
    engine = db.make_engine(settings)
    try:
        with engine.connect() as conn:
            page = search(conn, kr, tenant=tenant, query=parse_query(q))
        return [i.session.id for i in page.items]
    finally:
        engine.dispose()


def _index_state(url: str, sid: uuid.UUID) -> tuple[int, str | None]:
    with psycopg.connect(db.libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT coalesce(sum(cardinality(tokens)), 0) FROM search_index WHERE session_id = %s",
            (sid,),
        )
        n = rows.fetchone()
        marker = conn.execute(
            "SELECT key_id FROM search_index_sessions WHERE session_id = %s", (sid,)
        ).fetchone()
    assert n is not None
    return int(n[0]), marker[0] if marker else None


def test_index_rows_round_trip_through_spool_bytes() -> None:
    beacons = {1: [0, 7], 3: [16383]}
    rows = IndexRows(uuid.uuid4(), "tenant-ü", "local:v3", beacons, complete=True, scope=2**17 - 1)
    assert IndexRows.from_bytes(rows.to_bytes()) == rows
    filtered = IndexRows(
        uuid.uuid4(), "t", "local:v1", {}, complete=True, scope=5, word_filter=b"\x01\x02\x06" * 3
    )
    assert IndexRows.from_bytes(filtered.to_bytes()) == filtered


def test_the_writer_indexes_and_marks_the_session_at_close(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    sid = record(settings, keyring, tenant=tenant, lines=[("user", "zebrafinch chargeback")])
    n, marker = _index_state(settings.database_url or "", sid)
    assert n == 2 and marker == keyring.current_key_id()
    assert _found(settings, keyring, tenant, "zebrafinch chargeback") == [sid]
    # Marked: a reindex has nothing to do for it.
    engine = db.make_engine(settings)
    try:
        assert reindex(engine, keyring, tenant=tenant).indexed == 0
    finally:
        engine.dispose()


def test_indexing_off_writes_no_rows_and_a_reindex_catches_up(
    database_url: str, data_dir: Path, tenant: str
) -> None:
    off = Settings(database_url=database_url, data_dir=data_dir, search_index=False)
    kr = LocalKeyring.init(off.resolved_keyring_path)
    sid = record(off, kr, tenant=tenant, lines=[("agent", "guaranteed zebrafinch")])
    assert _index_state(database_url, sid) == (0, None)
    assert _found(off, kr, tenant, "zebrafinch") == []
    engine = db.make_engine(off)
    try:
        assert reindex(engine, kr, tenant=tenant).indexed == 1
    finally:
        engine.dispose()
    assert _found(off, kr, tenant, "zebrafinch") == [sid]


def test_index_rows_go_through_the_spool_without_a_word(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    down = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        data_dir=settings.data_dir,
        flush_interval=0.05,
        db_timeout=0.5,
    )

    async def go() -> uuid.UUID:
        a = await AuditRecorder(down, key_provider=keyring).start()
        h = a.open_session(tenant=tenant)
        h.add(r.UserUtterance(at=datetime.now(timezone.utc), text="zebrafinch", source="stt"))
        h.close()
        await a.flush()
        await a.aclose()
        assert list(settings.resolved_spool_dir.glob("*.spool"))
        assert_no_plaintext(settings.database_url or "", settings.resolved_spool_dir, "zebrafinch")
        async with AuditRecorder(settings, key_provider=keyring) as b:
            await b.flush()
        return h.session_id

    sid = asyncio.run(go())
    assert not list(settings.resolved_spool_dir.glob("*.spool"))
    assert _index_state(settings.database_url or "", sid) == (1, keyring.current_key_id())
    assert _found(settings, keyring, tenant, "zebrafinch") == [sid]
    with psycopg.connect(db.libpq_url(settings.database_url or "")) as conn:
        got = conn.execute(
            "SELECT word_filter FROM search_index_sessions WHERE session_id = %s", (sid,)
        ).fetchone()
    assert got is not None and got[0] is not None  # the filter came through the spool too


def test_a_beacon_goes_into_one_row_of_its_session_and_role() -> None:
    """Two words sharing a beacon, said in two batches: the second adds no row, so a row's
    smallest beacon names it and a replayed row is a no-op."""
    key = BeaconKey(tenant="t", key_id="local:v1", key=bytes(range(32)))
    by_beacon: dict[int, str] = {}
    for i in range(100_000):
        w = f"zebrafinch{i}"
        b = key.beacon(w)
        if b in by_beacon:
            first, second = by_beacon[b], w
            break
        by_beacon[b] = w
    at = datetime.now(timezone.utc)
    indexer = SessionIndexer(key, uuid.uuid4())
    indexer.add(r.UserUtterance(at=at, text=first, source="stt"))
    assert indexer.take(closing=False, now=0.0) is None  # waiting: not a row per batch
    taken = indexer.take(closing=False, now=HANDOVER_AFTER_S)
    assert taken is not None and taken.beacons == {1: [key.beacon(first)]}
    assert taken.scope == key.scope and not taken.complete
    indexer.add(r.UserUtterance(at=at, text=second, source="stt"))
    assert indexer.take(closing=False, now=100.0) is None
    assert indexer.take(closing=False, now=100.0 + HANDOVER_AFTER_S) is None  # no new beacon
    indexer.add(r.AgentUtterance(at=at, text=second))
    last = indexer.take(closing=True)
    assert last is not None and last.beacons == {2: [key.beacon(second)]} and last.complete


def test_rows_wait_for_the_close_or_the_hand_over_bound() -> None:
    """An open session's words are handed over once they have waited HANDOVER_AFTER_S (a
    long call is searchable during the call), the rest with the close and its mark."""
    key = BeaconKey(tenant="t", key_id="local:v1", key=bytes(range(32)))
    at = datetime.now(timezone.utc)
    indexer = SessionIndexer(key, uuid.uuid4())
    assert indexer.take(closing=False, now=0.0) is None  # nothing waiting: no clock started
    indexer.add(r.UserUtterance(at=at, text="heron lagoon", source="stt"))
    assert indexer.take(closing=False, now=10.0) is None
    indexer.add(r.AgentUtterance(at=at, text="kestrel"))
    assert indexer.take(closing=False, now=10.0 + HANDOVER_AFTER_S - 0.1) is None
    first = indexer.take(closing=False, now=10.0 + HANDOVER_AFTER_S)
    assert first is not None and not first.complete and first.word_filter is None
    assert first.beacons == {
        1: sorted(key.beacons(["heron", "lagoon"])),
        2: [key.beacon("kestrel")],
    }
    indexer.add(r.UserUtterance(at=at, text="heron osprey", source="stt"))
    last = indexer.take(closing=True)  # at once, whatever the clock
    assert last is not None and last.complete and last.word_filter is not None
    assert last.beacons == (
        {1: [key.beacon("osprey")]}
        if key.beacon("osprey") not in key.beacons(["heron", "lagoon"])
        else {}
    )


def test_an_open_call_is_searchable_after_the_hand_over_bound(
    settings: Settings, keyring: LocalKeyring, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the recorder: an open call's words wait for the bound (no row per batch), then
    reach the index while the call goes on; the rest go with the close, and the mark."""
    monkeypatch.setattr(search_writer, "HANDOVER_AFTER_S", 0.5)
    url = settings.database_url or ""
    kid, raw = keyring.search_key(tenant=tenant)
    key = BeaconKey(tenant=tenant, key_id=kid, key=raw)
    early = len(key.beacons(["quorvantine", "please"])) + 1  # and the agent's "course"
    late = len(key.beacons(["quorvantine", "please", "thistlewick"])) + 1

    async def go() -> uuid.UUID:
        async with AuditRecorder(settings, key_provider=keyring) as recorder:
            h = recorder.open_session(tenant=tenant)
            at = datetime.now(timezone.utc)
            h.add(r.UserUtterance(at=at, text="quorvantine please", source="stt"))
            await recorder.flush()
            assert _index_state(url, h.session_id) == (0, None)  # waiting
            await asyncio.sleep(0.6)
            h.add(r.AgentUtterance(at=at, text="of course"))
            await recorder.flush()
            assert _index_state(url, h.session_id) == (early, None)  # handed over, still open
            assert _found(settings, keyring, tenant, "quorvantine") == [h.session_id]
            h.add(r.UserUtterance(at=at, text="thistlewick", source="stt"))
            h.close()
            await recorder.flush()
            return h.session_id

    sid = asyncio.run(go())
    assert _index_state(url, sid) == (late, keyring.current_key_id())
    assert _found(settings, keyring, tenant, "thistlewick") == [sid]
