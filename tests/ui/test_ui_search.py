"""The search box and its results page in a real headless Chromium: a word the user said
finds its call for its tenant's auditor and opens the session at that turn; another tenant
finds only its own calls; bad input is a 422 page naming the rule; every search is
access-logged first, the words only as a keyed MAC. The picture goes to
docs/screenshots/search.png with
AUDITAGENT_TEST_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from auditagent.store import access_log
from tests.ui.support import CANARY_TOOL_ERROR, CANARY_USER, World
from tests.ui.test_ui_pages import shoot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_search_box_finds_the_call_and_opens_it_at_the_turn(
    page: Any, ui_base: str, ui_world: World, ui_engine: Engine, shots: Path
) -> None:
    sign_in(page, ui_base, ui_world.tokens["auditor"])
    box = page.get_by_role("search", name="Search calls").get_by_label("Search calls")
    box.fill(CANARY_USER.upper())
    with page.expect_response(re.compile(r"/ui/search\?")) as info:
        box.press("Enter")
    response = info.value
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.content()  # no inline script on the page
    hits = page.locator(f'ol.results a.hit[href^="/ui/sessions/{ui_world.handmade}#"]')
    assert hits.count() >= 1
    assert hits.first.locator("mark").inner_text().lower() == CANARY_USER
    href = hits.first.get_attribute("href")
    assert href is not None
    m = re.fullmatch(rf"/ui/sessions/{ui_world.handmade}#seq-(\d+)", href)
    assert m, href
    # every result holds the word, and each is a session of this tenant
    marks = page.locator("ol.results a.hit mark").all_inner_texts()
    assert marks and all(t.lower() == CANARY_USER for t in marks)
    shoot(page, shots, "search")
    hits.first.click()
    page.wait_for_url(f"{ui_base}{href}")
    turn = page.locator(f"#seq-{m.group(1)}")
    assert turn.is_visible() and CANARY_USER in turn.inner_text()
    # logged first, with the words only as a keyed MAC
    logged = [
        r.entry
        for r in access_log.list_access_log(ui_engine, tenant=ui_world.tenant, limit=50)
        if r.entry.action == "search"
    ]
    assert logged and len(logged[0].detail["query_mac"]) == 64
    assert CANARY_USER not in str(logged[0].detail).lower()


def test_a_tool_error_is_found_from_the_results_page_with_its_role(
    page: Any, ui_base: str, ui_world: World
) -> None:
    sign_in(page, ui_base, ui_world.tokens["auditor"])
    page.goto(f"{ui_base}/ui/search?q={CANARY_TOOL_ERROR}&role=tool")
    hit = page.locator(f'ol.results a.hit[href^="/ui/sessions/{ui_world.handmade}#seq-"]').first
    href = hit.get_attribute("href")
    assert href is not None
    hit.click()
    page.wait_for_url(f"{ui_base}{href}")
    # the result is drawn with its call: the anchor is there too
    assert CANARY_TOOL_ERROR in page.locator(href[href.index("#") :]).inner_text()
    page.goto(f"{ui_base}/ui/search?q={CANARY_TOOL_ERROR}&role=user")
    assert page.locator("ol.results a.hit").count() == 0
    assert page.locator(".empty").is_visible()


def test_another_tenant_finds_only_its_own_and_bad_input_is_a_422_page(
    page: Any, ui_base: str, ui_world: World
) -> None:
    sign_in(page, ui_base, ui_world.tokens["other"])
    response = page.goto(f"{ui_base}/ui/search?q={CANARY_USER}")
    assert response.status == 200
    # its own copy of the conversation, never the first tenant's
    hrefs = page.locator("ol.results a.hit").evaluate_all("els => els.map(e => e.pathname)")
    assert hrefs and set(hrefs) == {f"/ui/sessions/{ui_world.other_session}"}
    assert str(ui_world.handmade) not in page.content()
    for q, rule in (("zebra*", "wildcard"), ('"unbalanced', "quote"), ("the and of", "common")):
        response = page.goto(f"{ui_base}/ui/search?q={q}")
        assert response.status == 422, q
        assert rule in page.get_by_role("alert").inner_text().lower(), q
    response = page.goto(f"{ui_base}/ui/search?q=zebrafinch&role=robot")
    assert response.status == 422
