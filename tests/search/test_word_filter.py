"""Word filters: a false candidate is discarded without a decryption, and nothing is missed."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import Engine, text

from auditagent import records as r
from auditagent import retention
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.search import parse_query, search
from auditagent.search import writer as search_writer
from auditagent.search.beacons import BeaconKey
from auditagent.search.reindex import reindex, session_index
from auditagent.search.service import SearchPage
from auditagent.search.wordfilter import FilterBuilder, WordFilter, build, session_key
from auditagent.settings import Settings
from auditagent.store import search_rows
from tests.search.support import record
from tests.support.helpers import assert_no_plaintext


def _colliding(keyring: LocalKeyring, tenant: str) -> tuple[str, str]:
    """Two distinctive words sharing a beacon under the tenant's current search key."""
    kid, raw = keyring.search_key(tenant=tenant)
    key = BeaconKey(tenant=tenant, key_id=kid, key=raw)
    seen: dict[int, str] = {}
    for i in itertools.count():
        word = f"quillomarsh{i}"
        other = seen.setdefault(key.beacon(word), word)
        if other != word:
            return other, word
    raise AssertionError("unreachable")


@pytest.fixture
def settings(fresh_settings: Settings) -> Settings:
    """A database of its own: erasure checks the whole signed change log, and the shared test
    database holds entries signed by other tests' checkpoint keys."""
    return fresh_settings


def _page(engine: Engine, kr: LocalKeyring, tenant: str, q: str) -> SearchPage:
    with engine.connect() as conn:
        return search(conn, kr, tenant=tenant, query=parse_query(q))


def _filter(engine: Engine, sid: uuid.UUID) -> tuple[str, bytes | None] | None:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT key_id, word_filter FROM search_index_sessions WHERE session_id = :s"),
            {"s": sid},
        ).first()
    return None if row is None else (row[0], None if row[1] is None else bytes(row[1]))


def test_a_filter_holds_every_word_and_few_others() -> None:
    sid = uuid.uuid4()
    key = session_key(b"k" * 32, sid)
    words = {1: {f"wren{i}".encode() for i in range(150)}, 3: {b"transfer", b"funds"}}
    wf = WordFilter.parse(key, build(key, words))
    assert wf is not None
    for code, ws in words.items():
        assert wf.may_hold(sorted(ws), role=code)
        assert wf.may_hold(sorted(ws), role=None)
    assert not wf.may_hold([b"transfer"], role=1)
    assert not wf.may_hold([b"wren1"], role=2)  # no agent words at all
    absent = [f"heron{i}".encode() for i in range(20_000)]
    false = sum(wf.may_hold([w], role=1) for w in absent)
    assert false < 20_000 * 0.006  # the documented bound: 0.5 % at 16 bits a word
    # The same words in another session set other bits: filters cannot be compared.
    other = session_key(b"k" * 32, uuid.uuid4())
    assert build(other, words) != build(key, words)
    assert WordFilter.parse(key, b"\x02garbage") is None


def test_a_keyed_filter_holds_every_word_and_few_others() -> None:
    """Version 2 (what the recorder writes): the same guarantees as version 1."""
    bk = BeaconKey(tenant="t", key_id="local:v1", key=b"k" * 32)
    sid = uuid.uuid4()
    key = session_key(b"k" * 32, sid)
    words = {1: {f"wren{i}".encode() for i in range(150)}, 3: {b"transfer", b"funds"}}
    data = bk.word_filter(sid, words)
    assert data[0] == 2
    assert WordFilter.parse(key, data) is None  # version 2 needs the search key's material
    wf = WordFilter.parse(key, data, material=bk.material)
    assert wf is not None
    for code, ws in words.items():
        assert wf.may_hold(sorted(ws), role=code)
        assert wf.may_hold(sorted(ws), role=None)
    assert not wf.may_hold([b"transfer"], role=1)
    assert not wf.may_hold([b"wren1"], role=2)
    absent = [f"heron{i}".encode() for i in range(20_000)]
    false = sum(wf.may_hold([w], role=1) for w in absent)
    assert false < 20_000 * 0.006
    # Another session, the same words: other bits (one key per session).
    assert bk.word_filter(uuid.uuid4(), words) != data
    # Another tenant's key: other bits again.
    other = BeaconKey(tenant="u", key_id="local:v1", key=b"j" * 32)
    assert other.word_filter(sid, words) != data
    empty = WordFilter.parse(key, bk.word_filter(sid, {}), material=bk.material)
    assert empty is not None and not empty.may_hold([b"wren1"], role=None)


def test_a_version_1_filter_already_stored_is_still_read(
    settings: Settings, engine: Engine, keyring: LocalKeyring, tenant: str
) -> None:
    common, rare = _colliding(keyring, tenant)
    a = record(settings, keyring, tenant=tenant, lines=[("user", f"my {common} is late")])
    b = record(settings, keyring, tenant=tenant, lines=[("agent", f"the {rare} arrived")])
    stored = _filter(engine, a)
    assert stored is not None and stored[1] is not None and stored[1][0] == 2
    # a's filter as the recorder wrote it before version 2: BLAKE2b under its session key.
    _, raw = keyring.search_key(tenant=tenant, key_id=stored[0])
    v1 = build(session_key(raw, a), {1: {common.encode(), b"late"}})
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE search_index_sessions SET word_filter = :f WHERE session_id = :s"),
            {"f": v1, "s": a},
        )
    page = _page(engine, keyring, tenant, rare)
    assert [i.session.id for i in page.items] == [b]
    assert (page.screened, page.examined) == (2, 1)  # a discarded by its version 1 filter
    assert [i.session.id for i in _page(engine, keyring, tenant, common).items] == [a]


def test_a_false_candidate_is_discarded_without_decryption(
    settings: Settings, engine: Engine, keyring: LocalKeyring, tenant: str
) -> None:
    common, rare = _colliding(keyring, tenant)
    a = record(settings, keyring, tenant=tenant, lines=[("user", f"my {common} is late")])
    b = record(settings, keyring, tenant=tenant, lines=[("agent", f"the {rare} arrived")])
    page = _page(engine, keyring, tenant, rare)
    # Both are candidates (one beacon); only b was decrypted.
    assert [i.session.id for i in page.items] == [b]
    assert (page.screened, page.examined) == (2, 1)
    assert [i.session.id for i in _page(engine, keyring, tenant, common).items] == [a]

    # Without a's filter the same search decrypts it and still answers the same.
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE search_index_sessions SET word_filter = NULL WHERE session_id = :s"),
            {"s": a},
        )
    page = _page(engine, keyring, tenant, rare)
    assert [i.session.id for i in page.items] == [b]
    assert (page.screened, page.examined) == (2, 2)

    # Keyed bits only: no word, and no unkeyed hash of one, anywhere in the database.
    unkeyed = [hashlib.sha256(w.encode()).hexdigest() for w in (common, rare)]
    assert_no_plaintext(settings.database_url or "", settings.resolved_spool_dir, common, rare)
    assert_no_plaintext(settings.database_url or "", None, *unkeyed)

    # Erasure takes the filter with the rows.
    assert _filter(engine, b) is not None
    with engine.begin() as conn:
        search_rows.delete_for_sessions(conn, [b])
    assert _filter(engine, b) is None
    assert _page(engine, keyring, tenant, rare).items == []


def test_an_open_session_without_a_filter_is_still_found(
    settings: Settings,
    engine: Engine,
    keyring: LocalKeyring,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An open session's rows go out with the first batch here, not after the hand-over bound
    # (tests/search/test_writer.py holds the bound itself).
    monkeypatch.setattr(search_writer, "HANDOVER_AFTER_S", 0.0)
    common, rare = _colliding(keyring, tenant)
    closed = record(settings, keyring, tenant=tenant, lines=[("user", f"a {common} please")])

    async def go() -> None:
        async with AuditRecorder(settings, key_provider=keyring) as recorder:
            h = recorder.open_session(tenant=tenant)
            h.add(r.UserUtterance(at=datetime.now(timezone.utc), text=f"{rare} now", source="stt"))
            await recorder.flush()
            assert _filter(engine, h.session_id) is None  # open: no marker, no filter yet
            page = _page(engine, keyring, tenant, rare)
            assert [i.session.id for i in page.items] == [h.session_id]
            assert (page.screened, page.examined) == (2, 1)  # the closed one was screened out
            # A reindex while it is open marks it but gives it no filter (it may say more).
            assert reindex(engine, keyring, tenant=tenant).indexed == 1
            marker = _filter(engine, h.session_id)
            assert marker is not None and marker[1] is None
            h.add(r.UserUtterance(at=datetime.now(timezone.utc), text="tallowmere", source="stt"))
            h.close()
            await recorder.flush()

    asyncio.run(go())
    assert _filter(engine, closed) is not None
    found = _page(engine, keyring, tenant, "tallowmere")
    assert len(found.items) == 1 and found.examined == 1


def test_a_rotation_reindex_rebuilds_filters_under_the_new_key(
    settings: Settings, engine: Engine, keyring: LocalKeyring, tenant: str
) -> None:
    common, rare = _colliding(keyring, tenant)
    a = record(settings, keyring, tenant=tenant, lines=[("user", f"the {common} again")])
    b = record(settings, keyring, tenant=tenant, lines=[("tool", f"{rare}")])
    old = _filter(engine, a)
    assert old is not None and old[1] is not None
    new_id = keyring.rotate()
    assert reindex(engine, keyring, tenant=tenant).indexed == 2
    new = _filter(engine, a)
    assert new is not None and new[0] == new_id and new[1] is not None and new[1] != old[1]
    # Under the new key the two words may no longer collide; either way only b is decrypted.
    page = _page(engine, keyring, tenant, rare)
    assert [i.session.id for i in page.items] == [b] and page.examined == 1


def test_erasing_a_participant_removes_their_word_filters(
    settings: Settings, engine: Engine, keyring: LocalKeyring, tenant: str
) -> None:
    gone = record(
        settings,
        keyring,
        tenant=tenant,
        lines=[("user", "my marrowbeck order")],
        participant="+15550177",
    )
    kept = record(settings, keyring, tenant=tenant, lines=[("user", "marrowbeck as well")])
    assert _filter(engine, gone) is not None
    report = retention.erase_participant(
        engine,
        keyring,
        settings=settings,
        tenant=tenant,
        participant="+15550177",
        reason="DSR-13",
        requested_by="dpo",
    )
    assert report.ok and report.sessions_deleted == 1
    assert _filter(engine, gone) is None
    assert _filter(engine, kept) is not None
    assert [i.session.id for i in _page(engine, keyring, tenant, "marrowbeck").items] == [kept]


def test_the_writers_incremental_filter_is_the_one_a_reindex_builds() -> None:
    """Words hashed as they come, bits set at close: byte for byte what ``build`` makes from
    the same words (a reindexed session keeps the filter its recorder wrote)."""
    import random

    rng = random.Random(7)
    key = session_key(b"k" * 32, uuid.UUID(int=7))
    roles = {
        code: {f"w{rng.randrange(10**9)}".encode() for _ in range(n)}
        for code, n in ((0, 3000), (1, 40), (2, 1))
    }
    b = FilterBuilder(key)
    for code, ws in roles.items():
        listed = sorted(ws)
        rng.shuffle(listed)
        for i in range(0, len(listed), 11):
            b.add(code, listed[i : i + 11])
    assert b.finish() == build(key, roles)
    assert FilterBuilder(key).finish() == build(key, {})


def test_the_recorders_filter_is_the_one_a_reindex_builds(
    settings: Settings, engine: Engine, keyring: LocalKeyring, tenant: str
) -> None:
    """End to end: the filter the writer stored at close, byte for byte what a reindex builds
    from the session's sealed records."""
    sid = record(
        settings,
        keyring,
        tenant=tenant,
        lines=[
            ("user", "my parcel from Lisbon never came"),
            ("agent", "Sorry: the parcel left Lisbon on Monday"),
            ("tool", "parcel_status lisbon delayed"),
        ],
    )
    stored = _filter(engine, sid)
    assert stored is not None and stored[1] is not None
    kid, raw = keyring.search_key(tenant=tenant, key_id=stored[0])
    key = BeaconKey(tenant=tenant, key_id=kid, key=raw)
    with engine.connect() as conn:
        entries, rebuilt = session_index(conn, keyring, key, sid)
    assert rebuilt == stored[1]
    assert {code for code, _ in entries} == {1, 2, 3}
