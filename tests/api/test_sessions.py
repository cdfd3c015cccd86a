"""Sessions API against the real database: content, filters, pagination, holds, access log."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from auditagent_api import create_app
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import access_log as access_store
from auditagent.store import db
from tests.support.api import CANARY, access_rows, auth, make_token, record_conversation


def _sql(url: str, statement: str, params: tuple[object, ...] = ()) -> None:
    with psycopg.connect(db.libpq_url(url)) as conn:
        conn.execute(statement, params)


def test_transcript_entries(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    token = make_token(engine, "auditor", tenant)
    res = client.get(f"/v1/sessions/{rec.session_id}/transcript", headers=auth(token))
    assert res.status_code == 200
    entries = res.json()["entries"]
    kinds = [e["kind"] for e in entries]
    # turn_timing is folded into the turns, not listed.
    assert kinds == [
        "opened",
        "user",
        "tool_call",
        "tool_result",
        "agent",
        "handoff",
        "error",
        "closed",
    ]
    by_kind = {e["kind"]: e for e in entries}
    assert by_kind["user"]["text"] == f"what is my balance {CANARY}"
    assert by_kind["user"]["timing"]["transcription_delay"] == 0.2
    agent = by_kind["agent"]
    assert agent["text"] == "Your balance is"
    assert agent["generated_text"] == "Your balance is 42 euros."
    assert agent["interrupted"] is True
    assert agent["timing"]["e2e_latency"] == 0.8 and agent["timing"]["llm_ttft"] == 0.3
    assert by_kind["tool_call"]["name"] == "get_balance"
    assert by_kind["tool_call"]["arguments"] == '{"account": "A-1"}'
    assert by_kind["tool_result"]["output"] == "42 EUR"
    assert by_kind["tool_result"]["is_error"] is False
    assert by_kind["handoff"]["name"] == "billing"
    assert by_kind["error"]["text"] == "tts timeout"
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs)


def test_events_detail_and_verify(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    h = auth(make_token(engine, "auditor", tenant))
    events = client.get(f"/v1/sessions/{rec.session_id}/events", headers=h).json()["events"]
    assert [e["seq"] for e in events] == list(range(10))
    assert events[0]["record"]["participant"] == rec.participant
    assert events[0]["kind"] == "opened" and events[-1]["kind"] == "closed"
    detail = client.get(f"/v1/sessions/{rec.session_id}", headers=h).json()
    assert detail["counts"]["turn_timing"] == 2 and sum(detail["counts"].values()) == 10
    assert detail["integrity"]["ok"] is True and detail["integrity"]["events"] == 10
    assert detail["legal_holds"] == []
    assert detail["tool_names"] == ["get_balance"]
    v = client.get(f"/v1/sessions/{rec.session_id}/verify", headers=h).json()
    assert v["ok"] is True and v["events"] == 10 and v["head_hash"] == detail["head_hash"]


def test_legal_holds_shown_on_detail(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    url = settings.database_url or ""
    rec = record_conversation(settings, keyring, tenant=tenant)
    other = record_conversation(settings, keyring, tenant=tenant)
    pidx = keyring.blind_index(tenant=tenant, value=rec.participant)
    insert = (
        "INSERT INTO legal_holds (id, scope, tenant, session_id, participant_index, reason,"
        " created_by, released_at) VALUES (%s, %s, %s, %s, %s, %s, 'legal', %s)"
    )
    now = datetime.now(timezone.utc)
    _sql(url, insert, (uuid.uuid4(), "session", tenant, rec.session_id, None, "case 1", None))
    _sql(url, insert, (uuid.uuid4(), "participant", tenant, None, pidx, "case 2", None))
    _sql(url, insert, (uuid.uuid4(), "session", tenant, rec.session_id, None, "old", now))
    h = auth(make_token(engine, "auditor", tenant))
    holds = client.get(f"/v1/sessions/{rec.session_id}", headers=h).json()["legal_holds"]
    assert sorted((x["scope"], x["reason"]) for x in holds) == [
        ("participant", "case 2"),
        ("session", "case 1"),
    ]
    assert client.get(f"/v1/sessions/{other.session_id}", headers=h).json()["legal_holds"] == []
    _sql(url, insert, (uuid.uuid4(), "tenant", tenant, None, None, "tenant-wide", None))
    holds = client.get(f"/v1/sessions/{other.session_id}", headers=h).json()["legal_holds"]
    assert [x["scope"] for x in holds] == ["tenant"]


def test_filters(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    a = record_conversation(settings, keyring, tenant=tenant, agent="intake", tool="get_balance")
    b = record_conversation(
        settings,
        keyring,
        tenant=tenant,
        agent="billing",
        architecture="realtime",
        tool="refund",
    )
    h = auth(make_token(engine, "auditor", tenant))

    def ids(**params: object) -> set[str]:
        res = client.get("/v1/sessions", headers=h, params=params)
        assert res.status_code == 200, res.text
        return {item["id"] for item in res.json()["items"]}

    sa, sb = str(a.session_id), str(b.session_id)
    assert ids() == {sa, sb}
    assert ids(agent="billing") == {sb}
    assert ids(architecture="realtime") == {sb}
    assert ids(architecture="pipeline") == {sa}
    assert ids(tool="refund") == {sb}
    assert ids(tool="nope") == set()
    assert ids(participant=a.participant) == {sa}
    assert ids(participant=a.participant + "x") == set()
    assert ids(close_reason="participant_disconnected") == {sa, sb}
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    assert ids(**{"from": future}) == set()
    assert ids(**{"from": past, "to": future}) == {sa, sb}
    # A tenantless admin searching a participant matches it under every tenant's index.
    admin = auth(make_token(engine, "admin", None))
    res = client.get("/v1/sessions", headers=admin, params={"participant": a.participant})
    assert {i["id"] for i in res.json()["items"]} == {sa}
    for bad in (
        {"limit": 0},
        {"limit": 501},
        {"cursor": "!!"},
        {"architecture": "x"},
        {"from": "yesterday"},
        {"tenant": "a\x01b"},
    ):
        res = client.get("/v1/sessions", headers=h, params=bad)
        assert res.status_code == 422, bad
        assert res.headers["content-type"].startswith("application/problem+json")


def test_unknown_session_is_404_problem(
    client: TestClient,
    engine: Engine,
    tenant: str,
) -> None:
    h = auth(make_token(engine, "auditor", tenant))
    for suffix in ("", "/transcript", "/events", "/verify", "/export"):
        res = client.get(f"/v1/sessions/{uuid.uuid4()}{suffix}", headers=h)
        assert res.status_code == 404
        assert res.json()["type"].endswith("/not-found")
    assert client.get("/v1/sessions/not-a-uuid", headers=h).status_code == 422


@pytest.mark.parametrize(
    ("suffix", "action"),
    [
        ("", "sessions.get"),
        ("/transcript", "sessions.transcript"),
        ("/events", "sessions.events"),
        ("/verify", "sessions.verify"),
        ("/export", "sessions.export"),
    ],
)
def test_every_read_leaves_exactly_one_access_log_row(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
    suffix: str,
    action: str,
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    h = auth(make_token(engine, "auditor", tenant, name="reader-1"), "audit 2026-Q4")
    url = settings.database_url or ""
    assert access_rows(url, rec.session_id) == []
    assert client.get(f"/v1/sessions/{rec.session_id}{suffix}", headers=h).status_code == 200
    rows = access_rows(url, rec.session_id)
    assert len(rows) == 1
    assert rows[0][1:] == (action, "reader-1", "audit 2026-Q4")
    assert access_store.verify_access_log(engine).ok


def test_access_log_endpoint_and_chain(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    rec = record_conversation(settings, keyring, tenant=tenant)
    h = auth(make_token(engine, "auditor", tenant))
    for _ in range(3):
        client.get(f"/v1/sessions/{rec.session_id}/transcript", headers=h)
    page = client.get("/v1/access-log", headers=h, params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert all(i["tenant"] == tenant for i in page["items"])
    nxt = client.get(
        "/v1/access-log", headers=h, params={"limit": 2, "cursor": page["next_cursor"]}
    ).json()
    assert nxt["items"][0]["seq"] < page["items"][-1]["seq"]
    by_session = client.get(
        "/v1/access-log", headers=h, params={"session_id": str(rec.session_id)}
    ).json()["items"]
    # Reading the access log about a session is itself a logged read of it.
    assert [i["action"] for i in by_session] == ["access_log.list"] + ["sessions.transcript"] * 3


def test_concurrent_access_log_writers_keep_one_chain(engine: Engine) -> None:
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(10):
                access_store.append_access(
                    engine, access_store.AccessEntry(action="test.concurrent", detail={"i": i})
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = access_store.verify_access_log(engine)
    assert result.ok, result


@pytest.fixture
def fresh(
    make_database: object,
    data_dir: Path,
    keyring: LocalKeyring,
) -> Iterator[tuple[Settings, Engine, TestClient]]:
    url = make_database()  # type: ignore[operator]
    s = Settings(database_url=url, data_dir=data_dir, flush_interval=0.05)
    eng = db.make_engine(s)
    app = create_app(s, engine=eng, key_provider=keyring)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield s, eng, c
    eng.dispose()


def test_access_log_failure_refuses_the_read(
    fresh: tuple[Settings, Engine, TestClient],
    keyring: LocalKeyring,
    tenant: str,
) -> None:
    s, eng, c = fresh
    url = s.database_url or ""
    rec = record_conversation(s, keyring, tenant=tenant)
    h = auth(make_token(eng, "auditor", tenant))
    _sql(
        url,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'access log disk full'; END $$;"
        " CREATE TRIGGER refuse BEFORE INSERT ON access_log"
        " FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    for suffix in ("/transcript", "/events", "/export", "", "/verify"):
        res = c.get(f"/v1/sessions/{rec.session_id}{suffix}", headers=h)
        assert res.status_code == 503, suffix
        assert res.headers["content-type"].startswith("application/problem+json")
        assert CANARY not in res.text
        assert "Traceback" not in res.text
        assert res.json()["type"].endswith("/access-log-unavailable")
    assert c.get("/v1/sessions", headers=h).status_code == 503
    _sql(url, "DROP TRIGGER refuse ON access_log")
    assert c.get(f"/v1/sessions/{rec.session_id}/transcript", headers=h).status_code == 200


def test_latency_analytics_per_architecture(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    for e2e in (0.5, 0.7, 0.9):
        record_conversation(settings, keyring, tenant=tenant, e2e=e2e)
    record_conversation(settings, keyring, tenant=tenant, architecture="realtime", e2e=2.0)
    h = auth(make_token(engine, "auditor", tenant))
    res = client.get("/v1/analytics/latency", headers=h, params={"group_by": "architecture"})
    assert res.status_code == 200
    groups = {g["key"]: g for g in res.json()["groups"]}
    assert set(groups) == {"pipeline", "realtime"}
    pipe = groups["pipeline"]
    assert pipe["sessions"] == 3 and pipe["turns"] == 6
    assert pipe["metrics"]["e2e_latency"]["p50"] == pytest.approx(0.7)
    assert pipe["metrics"]["e2e_latency"]["p95"] == pytest.approx(0.88)
    assert pipe["metrics"]["llm_ttft"]["count"] == 3
    assert groups["realtime"]["metrics"]["e2e_latency"]["p50"] == pytest.approx(2.0)
    bounded = client.get("/v1/analytics/latency", headers=h, params={"max_sessions": 2}).json()
    assert bounded["sessions_scanned"] == 2 and bounded["truncated"] is True
    rows = access_rows(settings.database_url or "")
    assert rows[-1][1] == "analytics.latency"


def test_pagination_over_10k_sessions_is_stable(
    fresh: tuple[Settings, Engine, TestClient],
) -> None:
    s, eng, c = fresh
    url = s.database_url or ""
    # Three sessions share each timestamp, so the id tie-breaker is exercised throughout.
    _sql(
        url,
        "INSERT INTO sessions (id, tenant, started_at, status)"
        " SELECT gen_random_uuid(), 'big', timestamptz '2026-01-01' + (i / 3) * interval '1 s',"
        " 'closed' FROM generate_series(0, 9999) AS i",
    )
    h = auth(make_token(eng, "auditor", "big"))
    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 437}
        if cursor:
            params["cursor"] = cursor
        res = c.get("/v1/sessions", headers=h, params=params)
        assert res.status_code == 200, res.text
        body = res.json()
        seen += [(i["started_at"], i["id"]) for i in body["items"]]
        pages += 1
        if pages == 3:
            # Sessions added mid-walk are newer than the cursor and must not shift the pages.
            _sql(
                url,
                "INSERT INTO sessions (id, tenant, started_at, status) SELECT gen_random_uuid(),"
                " 'big', now(), 'open' FROM generate_series(1, 50)",
            )
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 23
    assert len(seen) == 10_000
    assert len({sid for _, sid in seen}) == 10_000
    keys = [(datetime.fromisoformat(at), uuid.UUID(sid)) for at, sid in seen]
    assert keys == sorted(keys, reverse=True)


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    client.get("/v1/sessions")
    text = client.get("/metrics").text
    assert "auditagent_api_request_seconds" in text
    assert 'route="/v1/sessions"' in text
    assert "auditagent_records_written" in text
