"""The review UI in a real headless Chromium: sign in, list, filter, read a session of each
seed architecture (interrupted reply, tool call, waterfall), a tool error, export, tampering,
sign out; another tenant's session, a form without its CSRF token, an expired sign-in.

Every page is photographed at 1400 px (and the list and a session at 800 px too); the pictures
go to docs/screenshots with AUDITAGENT_TEST_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from auditagent.reading.bundle import check_bundle
from auditagent.store import access_log, db, principals
from auditagent_demo import script
from auditagent_demo.systems import SEED_SYSTEMS, system_spec
from tests.ui.support import CANARY_TOOL_ERROR, CANARY_USER, World, seed, shoot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SCENARIO = script.default_scenario()


def test_root_and_pages_send_unauthenticated_readers_to_sign_in(page: Any, ui_base: str) -> None:
    response = page.goto(f"{ui_base}/")
    assert response.status == 200 and page.url == f"{ui_base}/ui/login?next=/ui/sessions"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    res = page.request.get(f"{ui_base}/ui/access-log", max_redirects=0)
    assert res.status == 303 and res.headers["location"].startswith("/ui/login?next=")


def test_sign_in_list_filter_and_sign_out(
    page: Any, context: Any, ui_base: str, ui_world: World, ui_engine: Engine, shots: Path
) -> None:
    page.goto(f"{ui_base}/ui/login")
    shoot(page, shots, "login")
    reason = f"QA-{uuid.uuid4().hex[:6]}"
    sign_in(page, ui_base, ui_world.tokens["admin"], reason=reason)
    (cookie,) = [c for c in context.cookies() if c["name"] == "aa_ui"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"

    rows = page.locator("table.list tbody tr")
    assert rows.count() == len(ui_world.seeds) + 3
    shoot(page, shots, "sessions")
    shoot(page, shots, "sessions-800", width=800)

    # architecture filter: exactly the realtime seed systems
    page.get_by_label("Architecture").select_option("realtime")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"architecture=realtime"))
    realtime = [n for n in ui_world.seeds if system_spec(n).architecture == "realtime"]
    assert rows.count() == len(realtime)
    assert set(rows.locator("td:nth-child(4)").all_inner_texts()) == {"realtime"}

    # gaps or pauses: only the hand-made conversations (the seed ones have neither)
    page.goto(f"{ui_base}/ui/sessions")
    page.get_by_label("have gaps or pauses").check()
    page.get_by_label("Tenant").fill(ui_world.tenant)
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"gaps=1"))
    links = rows.locator("a.rowlink")
    shown = {
        h.split("/")[-1] for h in (links.nth(i).get_attribute("href") for i in range(links.count()))
    }
    assert shown == {str(ui_world.handmade), str(ui_world.tamper_target)}

    # interrupted: every seed session has its barge-in, so all of the tenant's sessions
    page.goto(
        f"{ui_base}/ui/sessions?tenant={ui_world.tenant}&interrupted=1&tool=lookup_appointment"
    )
    assert rows.locator("a.rowlink").count() == len(ui_world.seeds)

    # keyset paging: two at a time reaches every session exactly once
    seen: list[str] = []
    page.goto(f"{ui_base}/ui/sessions?limit=2")
    while True:
        seen += [a.get_attribute("href") for a in rows.locator("a.rowlink").all()]
        nxt = page.get_by_role("link", name="Next page »")
        if nxt.count() == 0:
            break
        nxt.click()
        page.wait_for_load_state()
    assert len(seen) == len(set(seen)) == len(ui_world.seeds) + 3

    # the reason given at sign-in is in the access log, as X-Audit-Reason would be
    admin_rows = access_log.list_access_log(ui_engine, tenant=None, limit=200)
    assert any(r.entry.reason == reason and r.entry.action == "sessions.list" for r in admin_rows)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/ui/login\?ended=1"))
    page.goto(f"{ui_base}/ui/sessions")
    assert "/ui/login" in page.url


@pytest.mark.parametrize("system", SEED_SYSTEMS)
def test_a_session_of_each_seed_system(
    system: str, page: Any, ui_base: str, ui_world: World, shots: Path
) -> None:
    sid = seed(ui_world, system)
    spec = system_spec(system)
    sign_in(page, ui_base, ui_world.tokens["auditor"])
    page.goto(f"{ui_base}/ui/sessions/{sid}")
    header = page.locator("dl.facts")
    assert spec.architecture in header.inner_text()
    for model, _provider in spec.models.values():
        assert model in header.inner_text()
    assert "hidden for the auditor role" in header.inner_text()
    assert page.locator(".titleactions .badge-ok").inner_text().startswith("✓ Verified")

    timeline = page.locator("ol.timeline")
    users = timeline.locator("li.ev-user .utterance").all_inner_texts()
    assert users == SCENARIO.user_lines
    # the interrupted reply: what was heard, and what was generated but never heard
    (cut,) = timeline.locator("li.ev-agent:has(.heard)").all()
    heard = cut.locator(".heard .utterance").inner_text()
    unheard = cut.locator("mark.unheard").inner_text()
    assert heard and unheard.strip() and len(heard) < len(SCENARIO.agent_replies[3].text)
    assert SCENARIO.agent_replies[3].text.startswith(heard.rstrip())
    call = timeline.locator("li.ev-tool_call")
    assert "lookup_appointment" in call.inner_text() and '"AB123"' in call.inner_text()
    assert "Dr. Patel" in call.locator("pre").nth(1).inner_text()

    # the waterfall: one row per agent turn, the course's budget as reference lines
    chart = page.locator("#waterfall svg")
    budget = ("500 ms", "1200 ms") if spec.architecture == "pipeline" else ("200 ms", "500 ms")
    labels = chart.locator("text.budgetlabel").all_text_contents()
    assert labels == list(budget)
    assert chart.locator("text.rowlabel").count() == len(SCENARIO.agent_replies)
    bar = "rect.seg-llm" if spec.architecture == "pipeline" else "rect.seg-rt"
    if system != "gemini-live":  # Gemini Live reports no first-audio time (said in the row)
        assert chart.locator(bar).count() >= len(SCENARIO.agent_replies) - 1
    else:
        assert chart.locator("text.notreported").count() >= 1
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, shots, f"session-{system}")
    if system == "pipeline-deepgram":
        shoot(page, shots, "session-800", width=800)
        page.set_viewport_size({"width": 1400, "height": 900})
        page.screenshot(path=str(shots / "session.png"))


def test_tool_error_pause_gap_and_handoff_where_they_happened(
    page: Any, ui_base: str, ui_world: World, shots: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sign_in(page, ui_base, ui_world.tokens["admin"])
    page.goto(f"{ui_base}/ui/sessions/{ui_world.handmade}")
    timeline = page.locator("ol.timeline")
    failed = timeline.locator("li.ev-tool_call.ev-error")
    assert CANARY_TOOL_ERROR in failed.locator("pre.err").inner_text()
    assert '"day": "friday"' in failed.inner_text()
    kinds = timeline.locator("li").evaluate_all("els => els.map(e => e.className)")
    order = [k.split()[1] for k in kinds]
    assert order.index("ev-tool_call") < order.index("ev-agent")
    assert (
        "Recording paused" in timeline.inner_text() and "Recording resumed" in timeline.inner_text()
    )
    assert "Gap: 3 records lost: spool full" in timeline.inner_text()
    assert "Handoff: front-desk -> billing" in timeline.inner_text()
    assert "typed" in timeline.locator("li.ev-user").nth(1).inner_text()
    # an admin sees the participant
    assert re.search(r"\+1555\d{7}", page.locator("dl.facts").inner_text())
    # the waterfall of a pipeline: end of utterance, then LLM, then TTS, and the e2e marker
    chart = page.locator("#waterfall svg")
    assert chart.locator("rect.seg-eou").count() == 1 and chart.locator("line.e2e").count() == 1
    assert chart.locator("text.total.over").all_text_contents() == ["1380 ms"]
    shoot(page, shots, "session-tool-error")
    # nothing said in the conversation reached the server's logs
    assert CANARY_USER not in caplog.text and CANARY_TOOL_ERROR not in caplog.text


def test_export_is_the_signed_bundle(
    page: Any, ui_base: str, ui_world: World, tmp_path: Path
) -> None:
    sid = seed(ui_world, "openai-realtime")
    sign_in(page, ui_base, ui_world.tokens["auditor"])
    page.goto(f"{ui_base}/ui/sessions/{sid}")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download signed export").click()
    download = info.value
    assert download.suggested_filename == f"auditagent-session-{sid}.json"
    path = tmp_path / "bundle.json"
    download.save_as(path)
    doc = json.loads(path.read_text())
    check = check_bundle(doc, public_key=ui_world.keyring.signing_public_key())
    assert check.ok, check.problems
    assert any(r["kind"] == "user_utterance" for r in doc["records"])


def test_another_tenants_session_is_a_404_page(
    page: Any, ui_base: str, ui_world: World, ui_engine: Engine, shots: Path
) -> None:
    sign_in(page, ui_base, ui_world.tokens["other"])
    assert page.locator("table.list a.rowlink").count() == 1  # its own session only
    response = page.goto(f"{ui_base}/ui/sessions/{ui_world.handmade}")
    assert response.status == 404
    assert page.get_by_role("heading", name="Not found").is_visible()
    assert "front-desk" not in page.content()
    shoot(page, shots, "not-found")
    res = page.request.get(f"{ui_base}/ui/sessions/{ui_world.handmade}/export")
    assert res.status == 404
    # the owner's log shows the attempt
    owner = access_log.list_access_log(
        ui_engine, tenant=ui_world.tenant, session_id=ui_world.handmade, limit=50
    )
    assert any(r.entry.action == "session.denied" for r in owner)


def test_a_form_without_its_csrf_token_changes_nothing(
    page: Any, ui_base: str, ui_world: World, shots: Path
) -> None:
    sign_in(page, ui_base, ui_world.tokens["auditor"])
    page.locator("header.top form input[name=csrf]").evaluate("e => e.remove()")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="This form has expired").is_visible()
    shoot(page, shots, "csrf-refused")
    # still signed in: the sign-out did not happen
    assert page.goto(f"{ui_base}/ui/sessions").status == 200 and "/ui/login" not in page.url
    res = page.request.post(f"{ui_base}/ui/reason", form={"reason": "forged"}, max_redirects=0)
    assert res.status == 403
    res = page.request.post(
        f"{ui_base}/ui/reason", form={"reason": "forged", "csrf": "0" * 64}, max_redirects=0
    )
    assert res.status == 403
    page.goto(f"{ui_base}/ui/sessions")
    assert page.get_by_label(re.compile("^Reason for access")).input_value() == ""


@pytest.mark.parametrize("which", ["idle", "absolute"])
def test_an_expired_sign_in_goes_back_to_the_form(
    which: str, page: Any, ui_base: str, ui_world: World, ui_engine: Engine
) -> None:
    sign_in(page, ui_base, ui_world.tokens["auditor"])
    column = "last_seen_at" if which == "idle" else "created_at"
    age = "31 minutes" if which == "idle" else "13 hours"
    with ui_engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE ui_signins SET {column} = now() - interval '{age}'"
                " WHERE ended_at IS NULL AND kind = 'signin' AND principal_id IN"
                " (SELECT id FROM principals WHERE name = 'ui-auditor')"
            )
        )
    response = page.goto(f"{ui_base}/ui/sessions/{seed(ui_world, 'pipeline-whisper')}")
    assert response.status == 200 and "/ui/login?next=/ui/sessions/" in page.url
    assert "expired" in page.locator("[role=alert]").inner_text()
    # signing in again comes back to the page asked for
    page.get_by_label("Token").fill(ui_world.tokens["auditor"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/sessions/[0-9a-f-]{36}$"))


def test_integrity_failure_after_tampering(
    page: Any, ui_base: str, ui_world: World, shots: Path
) -> None:
    sid = ui_world.tamper_target
    url = db.libpq_url(ui_world.settings.database_url or "")
    with psycopg.connect(url) as conn, conn.transaction():
        # as a superuser could: drop the session's last record
        conn.execute("SET LOCAL auditagent.allow_purge = 'on'")
        conn.execute(
            "DELETE FROM events WHERE session_id = %s"
            " AND seq = (SELECT max(seq) FROM events WHERE session_id = %s)",
            (sid, sid),
        )
    sign_in(page, ui_base, ui_world.tokens["auditor"])
    page.goto(f"{ui_base}/ui/sessions/{sid}")
    badge = page.locator(".titleactions .badge-bad")
    assert badge.inner_text().startswith("✗ Integrity failing")
    assert "truncated" in page.locator("#integrity-alert").inner_text()
    shoot(page, shots, "session-tampered")
    page.goto(f"{ui_base}/ui/sessions?failing=1")
    hrefs = [a.get_attribute("href") for a in page.locator("table.list a.rowlink").all()]
    assert hrefs == [f"/ui/sessions/{sid}"]


def test_access_log_and_holds_pages(page: Any, ui_base: str, ui_world: World, shots: Path) -> None:
    sign_in(page, ui_base, ui_world.tokens["auditor"], reason="ticket QA-77")
    page.goto(f"{ui_base}/ui/sessions/{ui_world.handmade}")
    page.get_by_role("link", name="Access log").click()
    first = page.locator("table.list tbody tr").first
    assert "access_log.list" in first.inner_text()
    body = page.locator("table.list").inner_text()
    assert "sessions.transcript" in body and "ticket QA-77" in body
    shoot(page, shots, "access-log", full=False)
    # holds are an admin's page, as in the API
    assert page.get_by_role("link", name="Holds").count() == 0
    assert page.goto(f"{ui_base}/ui/holds").status == 403
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, ui_base, ui_world.tokens["admin"])
    page.get_by_role("link", name="Holds").click()
    assert page.get_by_role("heading", name="Legal holds").is_visible()
    held = page.locator("table.list tbody tr")
    assert held.count() == 1 and "litigation L-2026-114" in held.inner_text()
    held.get_by_role("link").click()
    page.wait_for_url(f"{ui_base}/ui/sessions/{ui_world.handmade}")
    assert "litigation L-2026-114" in page.locator("dl.facts").inner_text()
    page.go_back()
    shoot(page, shots, "holds")


def test_keyboard_and_labels(page: Any, ui_base: str, ui_world: World) -> None:
    sign_in(page, ui_base, ui_world.tokens["admin"])
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
            .map(e => e.name)"""
    )
    assert unlabelled == []
    # a session opens from the list with the keyboard alone
    page.locator("table.list a.rowlink").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ui/sessions/[0-9a-f-]{36}$"))


def test_one_time_token_signs_in_once(
    page: Any, context: Any, ui_base: str, ui_world: World, ui_engine: Engine
) -> None:
    from auditagent_api.ui import create_one_time_token

    principal = principals.authenticate(ui_engine, ui_world.tokens["admin"])
    assert principal is not None
    once = create_one_time_token(ui_engine, principal.id)
    sign_in(page, ui_base, once)
    context.clear_cookies()
    page.goto(f"{ui_base}/ui/login")
    page.get_by_label("Token").fill(once)
    page.get_by_role("button", name="Sign in").click()
    assert "already used" in page.locator("[role=alert]").inner_text()


def test_a_page_whose_access_log_row_cannot_be_written_shows_nothing(
    page: Any, ui_base: str, ui_world: World, shots: Path
) -> None:
    sign_in(page, ui_base, ui_world.tokens["auditor"])
    url = db.libpq_url(ui_world.settings.database_url or "")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION ui_refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'access log disk full'; END $$;"
            " CREATE TRIGGER ui_refuse BEFORE INSERT ON access_log"
            " FOR EACH ROW EXECUTE FUNCTION ui_refuse()"
        )
    try:
        for path in ("", "/export"):
            response = page.goto(f"{ui_base}/ui/sessions/{ui_world.handmade}{path}")
            assert response.status == 503, path
            assert CANARY_USER not in page.content() and CANARY_TOOL_ERROR not in page.content()
        assert page.get_by_role("heading", name="Unavailable").is_visible()
        assert page.goto(f"{ui_base}/ui/sessions").status == 503
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER ui_refuse ON access_log; DROP FUNCTION ui_refuse()")
    assert page.goto(f"{ui_base}/ui/sessions/{ui_world.handmade}").status == 200
