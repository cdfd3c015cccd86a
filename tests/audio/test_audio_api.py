"""`GET /v1/sessions/{id}/audio` on a recorded call: whole, by range, tenant-scoped,
access-logged; `/verify` holds the chunks to their records; erasure makes audio unreadable
and purges it."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import psycopg
import pytest
from auditagent_api import create_app
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent import retention
from auditagent.cli import main
from auditagent.keys import LocalKeyring
from auditagent.reading.bundle import check_bundle
from auditagent.settings import Settings
from auditagent.store import db
from tests.audio.audio_support import decode, record_call
from tests.support.api import access_rows, auth, make_token


@pytest.fixture
def keyring(fresh_settings: Settings) -> LocalKeyring:
    return LocalKeyring.init(fresh_settings.resolved_keyring_path)


@pytest.fixture
def engine(fresh_settings: Settings) -> Iterator[Engine]:
    eng = db.make_engine(fresh_settings)
    yield eng
    eng.dispose()


@pytest.fixture
def client(
    fresh_settings: Settings,
    engine: Engine,
    keyring: LocalKeyring,
) -> Iterator[TestClient]:
    app = create_app(fresh_settings, engine=engine, key_provider=keyring)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _sql(url: str, *statements: str, params: tuple[object, ...] = ()) -> None:
    with psycopg.connect(db.libpq_url(url)) as conn:
        for s in statements:
            conn.execute(s, params if "%s" in s else ())


def _tamper(url: str, sid: uuid.UUID, statement: str) -> None:
    """What a superuser could do: lift the append-only guard for one change."""
    _sql(
        url,
        "ALTER TABLE audio_chunks DISABLE TRIGGER audio_chunks_append_only",
        statement,
        "ALTER TABLE audio_chunks ENABLE TRIGGER audio_chunks_append_only",
        params=(sid,),
    )


async def test_audio_whole_ranges_scope_access_log_verify_and_tampering(
    client: TestClient,
    fresh_settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = fresh_settings.database_url or ""
    sid, length = await record_call(fresh_settings, "acme")
    token = make_token(engine, "auditor", "acme")
    res = client.get(f"/v1/sessions/{sid}/audio", headers=auth(token, "dispute 7"))
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "audio/ogg"
    assert res.headers["accept-ranges"] == "bytes"
    whole = res.content
    pcm, rate = decode(whole)
    assert pcm.shape[0] == 2 and abs(pcm.shape[1] / rate - length) < 1.5
    total = len(whole)
    for rng, want, span in [
        ("bytes=0-99", whole[:100], f"0-99/{total}"),
        ("bytes=100-", whole[100:], f"100-{total - 1}/{total}"),
        ("bytes=-50", whole[-50:], f"{total - 50}-{total - 1}/{total}"),
    ]:
        part = client.get(f"/v1/sessions/{sid}/audio", headers={**auth(token), "Range": rng})
        assert part.status_code == 206 and part.content == want, rng
        assert part.headers["content-range"] == f"bytes {span}"
    bad = client.get(
        f"/v1/sessions/{sid}/audio", headers={**auth(token), "Range": f"bytes={total}-"}
    )
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{total}"
    assert bad.headers["content-type"] == "application/problem+json"

    actions = [(a, r) for _, a, _, r in access_rows(url, sid)]
    assert ("sessions.audio", "dispute 7") in actions
    other = make_token(engine, "auditor", "beta")
    assert client.get(f"/v1/sessions/{sid}/audio", headers=auth(other)).status_code == 404
    assert client.get(f"/v1/sessions/{uuid.uuid4()}/audio", headers=auth(token)).status_code == 404

    # the transcript says where the recording is and how its turns line up with it
    transcript = client.get(f"/v1/sessions/{sid}/transcript", headers=auth(token)).json()
    audio = transcript["audio"]
    assert audio["url"] == f"/v1/sessions/{sid}/audio" and audio["complete"]
    assert abs(audio["seconds"] - pcm.shape[1] / rate) < 0.1
    start = datetime.fromisoformat(audio["started_at"])
    (user,) = [e for e in transcript["entries"] if e["kind"] == "user"]
    at = (datetime.fromisoformat(user["at"]) - start).total_seconds()
    assert 0 < at < audio["seconds"]
    # the caller is loud on channel 0 shortly before the turn's transcript was final
    lo = max(0, int((at - 1.5) * rate))
    assert np.abs(pcm[0, lo : int(at * rate)]).max() > 0.1

    report = client.get(f"/v1/sessions/{sid}/verify", headers=auth(token)).json()
    assert report["ok"] and report["audio"]["ok"] and report["audio"]["complete"]
    assert abs(report["audio"]["seconds"] - length) < 1.5

    # an export can carry the recording, bound by the bundle's signature and to its records
    res = client.get(f"/v1/sessions/{sid}/export?audio=true", headers=auth(token))
    assert res.status_code == 200, res.text
    bundle = res.json()
    assert base64.b64decode(bundle["audio"]["data_base64"]) == whole
    assert bundle["audio"]["ok"] and len(bundle["audio"]["chunks"]) >= 1
    public = keyring.signing_public_key()
    assert check_bundle(bundle, public_key=public).ok
    assert "audio" not in client.get(f"/v1/sessions/{sid}/export", headers=auth(token)).json()
    forged = json.loads(json.dumps(bundle))
    forged["audio"]["data_base64"] = base64.b64encode(whole[:-10]).decode()
    found = check_bundle(forged, public_key=public)
    assert not found.ok and any("audio" in p for p in found.problems), found.problems
    found = check_bundle(forged)  # no key: the chunk sizes no longer add up
    assert not found.ok and any("length" in p for p in found.problems), found.problems

    # the command line too, with the keyring of the data directory
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", url)
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(fresh_settings.data_dir))
    capsys.readouterr()
    assert main(["verify", str(sid)]) == 0
    assert "chunks" in capsys.readouterr().out

    # an edited chunk: it no longer opens, and it no longer matches its record
    _tamper(
        url,
        sid,
        "UPDATE audio_chunks SET ciphertext = "
        "set_byte(ciphertext, 40, get_byte(ciphertext, 40) # 1)"
        " WHERE session_id = %s AND chunk_index = 0",
    )
    report = client.get(f"/v1/sessions/{sid}/verify", headers=auth(token)).json()
    assert not report["ok"] and report["audio"]["first_bad_chunk"] == 0
    assert "altered" in report["audio"]["reason"]
    assert main(["verify", str(sid)]) == 1
    assert "audio INVALID at chunk 0" in capsys.readouterr().out
    assert client.get(f"/v1/sessions/{sid}/audio", headers=auth(token)).status_code == 409
    # a cut chunk
    _tamper(url, sid, "DELETE FROM audio_chunks WHERE session_id = %s AND chunk_index = 0")
    report = client.get(f"/v1/sessions/{sid}/verify", headers=auth(token)).json()
    assert not report["ok"] and "missing" in report["audio"]["reason"]
    assert client.get(f"/v1/sessions/{sid}/audio", headers=auth(token)).status_code == 409


async def test_a_legal_hold_keeps_the_audio(
    client: TestClient,
    fresh_settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
) -> None:
    sid, _ = await record_call(fresh_settings, "acme", participant="bob")
    token = make_token(engine, "auditor", "acme")
    before = client.get(f"/v1/sessions/{sid}/audio", headers=auth(token)).content
    hold = retention.create_hold(
        engine,
        keyring,
        scope="session",
        tenant="acme",
        reason="litigation",
        created_by="counsel",
        session_id=sid,
    )
    with pytest.raises(retention.ErasureBlocked, match=f"legal hold {hold.id}"):
        retention.erase_participant(
            engine,
            keyring,
            settings=fresh_settings,
            tenant="acme",
            participant="bob",
            reason="DSR-16",
            requested_by="dpo",
        )
    after = client.get(f"/v1/sessions/{sid}/audio", headers=auth(token))
    assert after.status_code == 200 and after.content == before and len(before) > 1000


async def test_erasure_makes_audio_unreadable_and_purges_it(
    client: TestClient,
    fresh_settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
) -> None:
    url = fresh_settings.database_url or ""
    sid, _ = await record_call(fresh_settings, "acme", participant="alice")
    token = make_token(engine, "auditor", "acme")
    assert client.get(f"/v1/sessions/{sid}/audio", headers=auth(token)).status_code == 200
    report = retention.erase_participant(
        engine,
        keyring,
        settings=fresh_settings,
        tenant="acme",
        participant="alice",
        reason="DSR-15",
        requested_by="dpo",
        batch_size=2,
    )
    assert report.ok and report.sessions_deleted == 1
    res = client.get(f"/v1/sessions/{sid}/audio", headers=auth(token))
    assert res.status_code == 410 and res.json()["type"].endswith("/erased")
    with psycopg.connect(db.libpq_url(url)) as conn:
        left = conn.execute(
            "SELECT count(*) FROM audio_chunks WHERE session_id = %s", (sid,)
        ).fetchone()
    assert left == (0,)


def test_the_transcript_says_how_much_audio_came_too_late_to_be_kept() -> None:
    from datetime import timezone

    from auditagent_api.audio_reads import transcript_audio

    from auditagent import records as r
    from auditagent.reading.decrypt import OpenedRecord

    t0 = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)
    sid = uuid.uuid4()

    def chunk(i: int, late: int, *, final: bool = False) -> OpenedRecord:
        rec = r.AudioChunk(
            at=t0,
            index=i,
            offset=i * 48_000,
            duration=48_000,
            started_at=t0,
            size=10,
            sha256="00" * 32,
            final=final,
            late_samples=late,
        )
        return OpenedRecord(seq=i + 1, at=t0, kind="audio_chunk", record=rec)

    audio = transcript_audio(sid, [chunk(0, 0), chunk(1, 12_000), chunk(2, 36_000, final=True)])
    assert audio["audio"].late_seconds == 1.0 and audio["audio"].seconds == 3.0
    body = audio["audio"].model_dump(mode="json")
    assert body["late_seconds"] == 1.0 and body["complete"] is True
