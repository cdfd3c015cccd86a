"""The review API's batched round trips: authentication in one statement, the session row and
the access-log row in two, the data key and the records in one. Same results and the same
chained, committed access log as the SQLAlchemy paths they replace."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import DBAPIError

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import access_log, batches, principals, reader
from auditagent.store.models import AccessLogRow, PrincipalRow
from tests.support.api import auth, make_token, record_conversation


def _last_used(engine: Engine, principal_id: uuid.UUID) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(PrincipalRow.last_used_at).where(PrincipalRow.id == principal_id)
        ).scalar_one()


def test_authenticate_stamps_last_used_at_once_a_minute(engine: Engine) -> None:
    p, token = principals.create_principal(engine, role="auditor", tenant="t-lu", name="lu")
    assert _last_used(engine, p.id) is None
    with engine.connect() as conn:
        got = principals.authenticate_on(conn, token)
        assert got is not None and (got.id, got.role, got.tenant) == (p.id, "auditor", "t-lu")
        # committed, not left in a transaction of the request's connection
        assert not conn.in_transaction()
    first = _last_used(engine, p.id)
    assert first is not None
    assert principals.authenticate(engine, token) is not None
    assert _last_used(engine, p.id) == first  # within the minute: no write
    with engine.begin() as conn:
        conn.execute(
            update(PrincipalRow)
            .where(PrincipalRow.id == p.id)
            .values(last_used_at=text("now() - interval '61 seconds'"))
        )
    stale = _last_used(engine, p.id)
    assert principals.authenticate(engine, token) is not None
    assert _last_used(engine, p.id) > stale


def test_revoked_or_unknown_tokens_do_not_authenticate_or_stamp(engine: Engine) -> None:
    p, token = principals.create_principal(engine, role="admin", tenant=None, name="rv")
    principals.revoke_principal(engine, p.id)
    assert principals.authenticate(engine, token) is None
    assert _last_used(engine, p.id) is None
    assert principals.authenticate(engine, token[:-2] + "zz") is None
    assert principals.authenticate(engine, "not-a-token") is None


def _entry(tenant: str | None, sid: uuid.UUID | None, i: int) -> access_log.AccessEntry:
    return access_log.AccessEntry(
        action="test.batched",
        principal_id=uuid.uuid4(),
        principal_name="reader 'quoted'; DROP",
        role="auditor",
        tenant=tenant,
        session_id=sid,
        route="GET /v1/sessions/{session_id}/transcript",
        reason="ticket \\ 42 \u00e9",
        correlation_id=uuid.uuid4().hex,
        detail={"i": i, "filters": ["from", "to"], "nested": {"x": None}},
    )


def test_session_and_access_row_in_one_batch(
    settings: Settings, keyring: LocalKeyring, engine: Engine, tenant: str
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    with engine.connect() as conn:
        seen: list[Any] = []

        def entry_for(session: Any) -> access_log.AccessEntry:
            seen.append(session)
            return _entry(session.tenant, session.id, 0)

        done = access_log.append_session_access_on(
            conn, rec.session_id, entry_for, read_after=reader.key_and_events_statements
        )
        session, logged = done.session, done.logged
        assert not conn.in_transaction()
        expected = reader.get_session(conn, rec.session_id)
        # the data key and the records, read after the COMMIT in the same round trip
        assert done.after is not None
        (key,), rows = done.after
        assert tuple(key) == tuple(reader.get_data_key(conn, rec.session_id) or ())
        assert rows == list(reader.event_tuples(conn, rec.session_id, expected_rows=None))
    assert session is seen[0]
    assert expected is not None and tuple(session) == tuple(expected)
    with engine.connect() as conn:
        row = conn.execute(select(AccessLogRow).where(AccessLogRow.seq == logged.seq)).one()
    assert (row.tenant, row.session_id, row.principal_name, row.reason) == (
        tenant,
        rec.session_id,
        "reader 'quoted'; DROP",
        "ticket \\ 42 \u00e9",
    )
    assert row.detail == {"i": 0, "filters": ["from", "to"], "nested": {"x": None}}
    assert bytes(row.hash) == logged.hash
    assert access_log.verify_access_log(engine).ok


def test_a_refused_entry_writes_nothing_and_releases_the_lock(engine: Engine) -> None:
    class Refused(Exception):
        pass

    def refuse(session: Any) -> access_log.AccessEntry:
        assert session is None  # no such session
        raise Refused

    before = access_log.list_access_log(engine, limit=1)
    with engine.connect() as conn:
        with pytest.raises(Refused):
            access_log.append_session_access_on(conn, uuid.uuid4(), refuse)
        # the connection is usable and idle; the lock is free for another writer at once
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
        conn.rollback()
        done = threading.Event()
        threading.Thread(
            target=lambda: (access_log.append_access(engine, _entry(None, None, 1)), done.set())
        ).start()
        assert done.wait(10)
    after = access_log.list_access_log(engine, limit=2)
    assert [a.entry.action for a in after[:1]] == ["test.batched"]
    assert after[1:] == before


def test_batched_and_sqlalchemy_writers_keep_one_chain(engine: Engine) -> None:
    errors: list[BaseException] = []

    def batched(n: int) -> None:
        try:
            with engine.connect() as conn:
                for i in range(10):
                    # a read begun on the connection is rolled back, not committed with the row
                    conn.execute(text("SELECT 1"))
                    access_log.append_access_on(conn, _entry("t-chain", None, n * 100 + i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def plain(n: int) -> None:
        try:
            for i in range(10):
                access_log.append_access(engine, _entry(None, None, n * 100 + i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=batched, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=plain, args=(n,)) for n in range(4, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = access_log.verify_access_log(engine)
    assert result.ok, result


def test_data_key_and_events_match_the_separate_reads(
    settings: Settings, keyring: LocalKeyring, engine: Engine, tenant: str
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    with engine.connect() as conn:
        session = reader.get_session(conn, rec.session_id)
        assert session is not None and session.event_count > 0
        key = reader.get_data_key(conn, rec.session_id)
        rows = list(reader.event_tuples(conn, rec.session_id, expected_rows=None))
        got_key, got_rows = reader.data_key_and_events(
            conn, rec.session_id, expected_rows=session.event_count
        )
        assert not conn.in_transaction()
        assert list(got_rows) == rows
        assert key is not None and got_key is not None
        assert tuple(got_key) == tuple(key) and got_key.wrapped == key.wrapped
        none_key, none_rows = reader.data_key_and_events(conn, uuid.uuid4(), expected_rows=0)
        assert none_key is None and list(none_rows) == []


def test_driver_errors_come_out_as_sqlalchemy_errors_and_the_connection_recovers(
    engine: Engine,
) -> None:
    with engine.connect() as conn:
        with pytest.raises(DBAPIError), batches.on_driver(conn) as db:
            db.run("BEGIN; SELECT 1; SELECT 1 / 0; COMMIT")
        assert conn.execute(text("SELECT 2")).scalar_one() == 2


def test_nothing_is_read_after_an_access_row_that_fails(
    settings: Settings, keyring: LocalKeyring, engine: Engine, tenant: str
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    reads: list[Any] = []

    def read_after(session: Any) -> Any:
        # a read that would show itself: it bumps a sequence when it runs
        reads.append(session.id)
        return "SELECT nextval('h11_reads')", {}, ()

    with engine.begin() as conn:
        conn.execute(text("CREATE SEQUENCE IF NOT EXISTS h11_reads"))
        conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION h11_refuse() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'access log disk full'; END $$;"
                " CREATE TRIGGER h11_refuse BEFORE INSERT ON access_log"
                " FOR EACH ROW EXECUTE FUNCTION h11_refuse()"
            )
        )
    try:
        with engine.connect() as conn, pytest.raises(access_log.AccessLogUnavailable):
            access_log.append_session_access_on(
                conn,
                rec.session_id,
                lambda s: _entry(s.tenant, s.id, 0),
                read_after=read_after,
            )
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER h11_refuse ON access_log"))
    assert reads == [rec.session_id]  # asked for, but never run:
    with engine.connect() as conn:
        assert conn.execute(text("SELECT nextval('h11_reads')")).scalar_one() == 1


def test_a_session_too_long_to_fetch_at_once_is_streamed_with_the_same_transcript(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    h = auth(make_token(engine, "auditor", tenant))
    path = f"/v1/sessions/{rec.session_id}/transcript"
    batched = client.get(path, headers=h)
    assert batched.status_code == 200
    monkeypatch.setattr(reader, "FETCH_ALL_MAX", 1)
    with engine.connect() as conn:
        session = reader.get_session(conn, rec.session_id)
        assert session is not None and session.event_count > 1
        assert reader.key_and_events_statements(session) is None
    streamed = client.get(path, headers=h)
    assert streamed.status_code == 200
    assert streamed.content == batched.content
    assert [e["kind"] for e in streamed.json()["entries"]].count("user") >= 1
