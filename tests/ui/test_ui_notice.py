"""The session list's recording-notice filter in a real headless Chromium: sessions without a
notice heard in full (none asked for, or spoken over) against those with one, the state shown
per row, kept across pages, and a bad value answered with a message, not an error page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.ui.support import World, shoot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _shown(page: Any) -> dict[str, str]:
    """Session id -> the Notice cell of each listed row."""
    rows = page.locator("table.list tbody tr:has(a.rowlink)")
    out: dict[str, str] = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        href = row.locator("a.rowlink").get_attribute("href")
        out[href.split("/")[-1]] = row.locator('td[data-label="Notice"]').inner_text().strip()
    return out


def test_sessions_without_a_completed_notice(
    page: Any, ui_base: str, ui_world: World, shots: Path
) -> None:
    sign_in(page, ui_base, ui_world.tokens["admin"])
    heard, spoken_over = str(ui_world.handmade), str(ui_world.tamper_target)
    seeds = {str(s) for s in ui_world.seeds.values()}

    page.goto(f"{ui_base}/ui/sessions?tenant={ui_world.tenant}")
    page.get_by_label("Recording notice").select_option("missing")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"notice=missing"))
    missing = _shown(page)
    # the seed agents ask for no notice; the spoken-over one never completed
    assert missing == {**{s: "none asked" for s in seeds}, spoken_over: "incomplete"}
    assert page.get_by_label("Recording notice").input_value() == "missing"
    shoot(page, shots, "sessions-notice-missing")

    page.get_by_label("Recording notice").select_option("completed")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"notice=completed"))
    assert _shown(page) == {heard: "completed"}

    # "any" lists all three states side by side
    page.get_by_label("Recording notice").select_option("")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"notice=(&|$)"))
    assert _shown(page) == {**missing, heard: "completed"}

    # two at a time: the filter rides along in every Next link
    seen: dict[str, str] = {}
    page.goto(f"{ui_base}/ui/sessions?tenant={ui_world.tenant}&notice=missing&limit=2")
    while True:
        seen.update(_shown(page))
        nxt = page.get_by_role("link", name="Next page »")
        if nxt.count() == 0:
            break
        assert "notice=missing" in (nxt.get_attribute("href") or "")
        nxt.click()
        page.wait_for_load_state()
    assert seen == missing


def test_a_bad_notice_value_is_a_message(page: Any, ui_base: str, ui_world: World) -> None:
    sign_in(page, ui_base, ui_world.tokens["auditor"])
    response = page.goto(f"{ui_base}/ui/sessions?notice=maybe")
    assert response.status == 422
    assert "Recording notice: choose missing or completed" in page.get_by_role("alert").inner_text()
    assert page.locator("table.list a.rowlink").count() == 0
    # a value the query's own checks refuse is a 4xx too, never a server error
    assert page.request.get(f"{ui_base}/ui/sessions?notice=%01").status == 422
