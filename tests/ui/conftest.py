"""Fixtures of the review UI tests: one recorded world and one served app per run, one
browser per module, a fresh browser context (no cookies) per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from auditagent import retention
from auditagent.integrity import checkpoints
from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from auditagent.store.principals import create_principal
from tests.ui.support import World, record_world, require_browser, screenshots_dir, serve


@pytest.fixture(scope="session")
def ui_world(make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> World:
    data_dir: Path = tmp_path_factory.mktemp("ui") / "data"
    data_dir.mkdir(mode=0o700)
    # A database of its own: the pages list every session an admin can see.
    settings = Settings(database_url=make_database(), data_dir=data_dir, flush_interval=0.05)
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    world = record_world(settings, keyring)
    engine = db.make_engine(settings)
    try:
        retention.create_hold(
            engine,
            keyring,
            scope="session",
            tenant=world.tenant,
            reason="litigation L-2026-114: keep the front-desk call",
            created_by="ui-tests",
            session_id=world.handmade,
            sink=checkpoints.default_sink(settings),
        )
        for name, role, tenant in (
            ("admin", "admin", None),
            ("auditor", "auditor", world.tenant),
            ("other", "auditor", world.other_tenant),
        ):
            _, token = create_principal(engine, role=role, tenant=tenant, name=f"ui-{name}")
            world.tokens[name] = token
    finally:
        engine.dispose()
    return world


@pytest.fixture(scope="session")
def ui_engine(ui_world: World) -> Iterator[Engine]:
    engine = db.make_engine(ui_world.settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def ui_base(ui_world: World, ui_engine: Engine) -> Iterator[str]:
    with serve(ui_world.settings, ui_engine, ui_world.keyring) as (base, _app):
        yield base


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshots_dir(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def browser(ui_base: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = require_browser()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def context(browser: Any, ui_base: str) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    requests: list[str] = []
    ctx.on("request", lambda req: requests.append(req.url))
    ctx.requests = requests  # every URL the pages asked for, checked for anything off-site
    yield ctx
    ctx.close()
    outside = [u for u in requests if not u.startswith(ui_base) and not u.startswith("data:")]
    assert not outside, f"the pages fetched something not served locally: {outside}"


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()
