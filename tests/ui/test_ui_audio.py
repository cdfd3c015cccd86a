"""The call's recording on the session page, in a real headless Chromium: the player loads
through `/ui/sessions/{id}/audio` (the API's own audio read: byte ranges, access log first,
tenant scoping), each turn's button seeks it to where the turn starts, the audio's integrity is
shown beside it, a tampered chunk shows there, and a session without audio has no player."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from auditagent.store import access_log, db
from tests.ui.support import World, seed, shoot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SYSTEM = "pipeline-deepgram"

_READY = """() => { const a = document.getElementById('player');
    return a.readyState >= 1 && a.duration > 0; }"""


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _turn_offsets(page: Any, base: str, token: str, sid: uuid.UUID) -> tuple[Any, list[float]]:
    """The transcript's contract, read from the API: a turn plays at its start (``started_at``,
    else ``at``) minus the recording's ``started_at``."""
    doc = page.request.get(f"{base}/v1/sessions/{sid}/transcript", headers=_bearer(token)).json()
    audio = doc["audio"]
    start = datetime.fromisoformat(audio["started_at"])
    offsets = []
    for e in doc["entries"]:
        if e["kind"] in ("user", "agent"):
            off = (datetime.fromisoformat(e.get("started_at") or e["at"]) - start).total_seconds()
            if off <= audio["seconds"]:
                offsets.append(max(0.0, off))
    return audio, offsets


def test_the_player_loads_by_ranges_and_a_turn_seeks_it(
    page: Any, ui_base: str, ui_world: World, ui_engine: Engine, shots: Path
) -> None:
    sid = seed(ui_world, SYSTEM)
    token = ui_world.tokens["auditor"]
    fetched: list[tuple[int, str | None]] = []
    page.on(
        "response",
        lambda r: (
            fetched.append((r.status, r.request.headers.get("range")))
            if r.url == f"{ui_base}/ui/sessions/{sid}/audio"
            else None
        ),
    )
    reason = f"dispute-{uuid.uuid4().hex[:6]}"
    sign_in(page, ui_base, token, reason=reason)
    page.goto(f"{ui_base}/ui/sessions/{sid}")
    player = page.locator("audio#player")
    assert player.get_attribute("controls") is not None
    assert page.get_by_role("heading", name="Recording").is_visible()
    status = page.locator("#audio-status").inner_text()
    assert re.search(r"✓ Audio verified\s+\d+ chunk\(s\)", status), status

    # the browser loads it: metadata read, a duration, asked for by byte range and given 206
    page.wait_for_function(_READY, timeout=30_000)
    audio, offsets = _turn_offsets(page, ui_base, token, sid)
    duration = page.evaluate("document.getElementById('player').duration")
    assert abs(duration - audio["seconds"]) < 1.5, (duration, audio["seconds"])
    assert any(s == 206 and (r or "").startswith("bytes=") for s, r in fetched), fetched

    # one labelled, keyboard-reachable button per turn; each seeks to the turn's offset
    buttons = page.locator("ol.timeline button.seek")
    assert buttons.count() == len(offsets) >= 4
    assert page.get_by_role("button", name=re.compile(r"^Play the caller's turn from ")).count()
    page.evaluate(
        """() => { window.seeks = []; const a = document.getElementById('player');
            a.addEventListener('seeked', () => window.seeks.push(a.currentTime)); }"""
    )
    for n, how in ((2, "click"), (len(offsets) - 1, "keyboard"), (1, "click")):
        before = page.evaluate("window.seeks.length")
        if how == "click":
            buttons.nth(n).click()
        else:
            buttons.nth(n).focus()
            page.keyboard.press("Enter")
        page.wait_for_function("n => window.seeks.length > n", arg=before, timeout=15_000)
        at = page.evaluate("window.seeks[window.seeks.length - 1]")
        assert abs(at - offsets[n]) <= 0.5, (n, at, offsets[n])

    page.evaluate("document.getElementById('player').pause()")
    page.set_viewport_size({"width": 1400, "height": 900})
    buttons.nth(1).scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 120)")
    page.screenshot(path=str(shots / "session-audio.png"))
    shoot(page, shots, "session-audio-800", width=800, full=False)

    # the same bytes as the API's route, by range, with the recording's size when refused
    part = page.request.get(f"{ui_base}/ui/sessions/{sid}/audio", headers={"Range": "bytes=0-99"})
    assert part.status == 206 and part.body()[:4] == b"OggS" and len(part.body()) == 100
    total = int(part.headers["content-range"].rsplit("/", 1)[1])
    whole = page.request.get(f"{ui_base}/ui/sessions/{sid}/audio")
    api = page.request.get(f"{ui_base}/v1/sessions/{sid}/audio", headers=_bearer(token))
    assert whole.status == 200 and whole.body() == api.body() and len(api.body()) == total
    past = page.request.get(
        f"{ui_base}/ui/sessions/{sid}/audio", headers={"Range": f"bytes={total}-"}
    )
    assert past.status == 416 and past.headers["content-range"] == f"bytes */{total}"

    # every read of the recording is in the access log, with the reason given at sign-in
    rows = access_log.list_access_log(ui_engine, tenant=ui_world.tenant, session_id=sid, limit=500)
    reads = [
        r.entry
        for r in rows
        if r.entry.action == "sessions.audio"
        and r.entry.route == "GET /ui/sessions/{session_id}/audio"
    ]
    assert reads and all(e.reason == reason for e in reads)
    assert any(e.detail.get("range") for e in reads)


def test_a_session_without_audio_has_no_player(
    page: Any, context: Any, ui_base: str, ui_world: World
) -> None:
    sign_in(page, ui_base, ui_world.tokens["auditor"])
    page.goto(f"{ui_base}/ui/sessions/{ui_world.handmade}")
    assert page.locator("ol.timeline li").count() > 5
    assert page.locator("audio").count() == 0 and page.locator("button.seek").count() == 0
    assert not any(u.endswith("/player.js") for u in context.requests)
    assert page.request.get(f"{ui_base}/ui/sessions/{ui_world.handmade}/audio").status == 404


def test_another_tenants_audio_is_a_404_and_logged(
    page: Any, ui_base: str, ui_world: World, ui_engine: Engine
) -> None:
    sid = seed(ui_world, SYSTEM)
    url = f"{ui_base}/ui/sessions/{sid}/audio"
    signed_out = page.request.get(url, max_redirects=0)
    assert signed_out.status == 303 and signed_out.headers["location"].startswith("/ui/login")
    sign_in(page, ui_base, ui_world.tokens["other"])
    res = page.request.get(url, headers={"Range": "bytes=0-"})
    assert res.status == 404 and b"OggS" not in res.body()
    owner = access_log.list_access_log(ui_engine, tenant=ui_world.tenant, session_id=sid, limit=500)
    assert any(
        r.entry.action == "session.denied" and (r.entry.route or "").endswith("/audio")
        for r in owner
    )


def test_audio_whose_access_log_row_cannot_be_written_is_not_served(
    page: Any, ui_base: str, ui_world: World
) -> None:
    sid = seed(ui_world, SYSTEM)
    sign_in(page, ui_base, ui_world.tokens["auditor"])
    url = db.libpq_url(ui_world.settings.database_url or "")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION ui_audio_refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'access log disk full'; END $$;"
            " CREATE TRIGGER ui_audio_refuse BEFORE INSERT ON access_log"
            " FOR EACH ROW EXECUTE FUNCTION ui_audio_refuse()"
        )
    try:
        res = page.request.get(f"{ui_base}/ui/sessions/{sid}/audio")
        assert res.status == 503 and b"OggS" not in res.body()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "DROP TRIGGER ui_audio_refuse ON access_log; DROP FUNCTION ui_audio_refuse()"
            )
    assert page.request.get(f"{ui_base}/ui/sessions/{sid}/audio").status == 200


def test_a_tampered_chunk_shows_beside_the_player(page: Any, ui_base: str, ui_world: World) -> None:
    sid = seed(ui_world, "openai-realtime")
    url = db.libpq_url(ui_world.settings.database_url or "")

    def superuser(statement: str) -> None:
        """What a superuser could do: lift the append-only guard for one change."""
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            conn.execute("ALTER TABLE audio_chunks DISABLE TRIGGER audio_chunks_append_only")
            conn.execute(statement, (sid,))
            conn.execute("ALTER TABLE audio_chunks ENABLE TRIGGER audio_chunks_append_only")

    # flip the first byte of chunk 1's ciphertext, and flip it back afterwards
    flip = (
        "UPDATE audio_chunks"
        " SET ciphertext = set_byte(ciphertext, 0, 255 - get_byte(ciphertext, 0))"
        " WHERE session_id = %s AND chunk_index = 1"
    )
    superuser(flip)
    try:
        sign_in(page, ui_base, ui_world.tokens["auditor"])
        page.goto(f"{ui_base}/ui/sessions/{sid}")
        status = page.locator("#audio-status").inner_text()
        assert status.startswith("✗ Audio failing at chunk 1"), status
    finally:
        superuser(flip)
    page.reload()
    assert page.locator("#audio-status").inner_text().startswith("✓ Audio verified")
