"""Fixtures of the whole suite: a real Postgres database per run, settings, keyring, engine,
the review app's client.

Layout and import scheme (one for every directory):
- tests mirror the package: ``tests/<package>/test_<module>.py`` (tests/livekit, recorder,
  integrity, reading, store, retention, cli, api, demo); repository-wide checks (lint, docs,
  import cycles, public API) and tests of top-level modules (keys, logfilter) sit in tests/;
  tests/integration/ runs the real recorder, database and API across steps; tests/e2e/ runs
  through the provider simulators.
- ``tests`` and every directory under it is a package (an ``__init__.py`` each), and pytest
  imports in its default ``prepend`` mode: the repository root is the base directory, so a test
  module is ``tests.livekit.test_capture``, never a top-level ``livekit`` that would shadow
  LiveKit's own package, and two directories may hold a ``test_docs.py`` each.
- fixtures are only defined in ``conftest.py`` files, never imported into a test module; a
  directory's conftest may override one (tests/retention and tests/integrity give ``settings``
  a database of its own, so ``keyring``, ``engine`` and ``client`` follow).
- helpers, fakes and failure simulators are imported by name from ``tests.support``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from auditagent_api import create_app
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.databases import ADMIN_URL, create_database, drop_database, server_url
from tests.support.pgbouncer import POOLER_ENV, PrivatePgBouncer, private_pgbouncer


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's AUDITAGENT_* settings, nor their data directory: a CLI run
    that resolves its keyring or checkpoints from the default place finds an empty one of its
    own, never what `auditagent demo` left in the user's home."""
    for key in list(os.environ):
        if key.startswith("AUDITAGENT_") and not key.startswith("AUDITAGENT_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(tmp_path_factory.mktemp("default-data")))


@pytest.fixture(scope="session")
def pooler() -> Iterator[PrivatePgBouncer | None]:
    """With AUDITAGENT_TEST_POOLER=pgbouncer, one private transaction-mode PgBouncer in front of
    the test server for the run, and every database URL the fixtures hand out goes through it
    (migrations included); otherwise None and URLs name the server directly."""
    mode = os.environ.get(POOLER_ENV, "")
    if not mode:
        yield None
        return
    if mode != "pgbouncer":
        pytest.exit(f"{POOLER_ENV}={mode!r}: the only pooler the suite knows is 'pgbouncer'", 3)
    with private_pgbouncer(ADMIN_URL) as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def make_database(pooler: PrivatePgBouncer | None) -> Iterator[Callable[[], str]]:
    """Factory: a new, migrated database on the test server; dropped at the end of the run."""
    created: list[str] = []

    def make() -> str:
        name = create_database()
        created.append(name)
        url = db.sqlalchemy_url(server_url(name))
        if pooler is not None:
            url = pooler.route(url)
        db.upgrade(Settings(database_url=url, data_dir=Path("/nonexistent")), url=url)
        return url

    yield make
    for name in created:
        drop_database(name)


@pytest.fixture(scope="session")
def database_url(make_database: Callable[[], str]) -> str:
    """One migrated database shared by the run; tests keep apart by tenant and session id."""
    return make_database()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=data_dir, flush_interval=0.05)


@pytest.fixture
def fresh_settings(make_database: Callable[[], str], data_dir: Path) -> Settings:
    """Settings on a new database of its own (tests that count sessions globally)."""
    return Settings(
        database_url=make_database(),
        data_dir=data_dir,
        flush_interval=0.05,
        retention_default_days=30,
        retention_floor_days=7,
    )


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def keyring(settings: Settings) -> LocalKeyring:
    return LocalKeyring.init(settings.resolved_keyring_path)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    eng = db.make_engine(settings)
    yield eng
    eng.dispose()


@pytest.fixture
def client(settings: Settings, engine: Engine, keyring: LocalKeyring) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine, key_provider=keyring)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def cli_env(
    fresh_settings: Settings, keyring: LocalKeyring, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The CLI sees the same database, data directory (keyring, checkpoints) and periods."""
    assert fresh_settings.database_url
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", fresh_settings.database_url)
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(fresh_settings.data_dir))
    monkeypatch.setenv("AUDITAGENT_RETENTION_DEFAULT_DAYS", "30")
    monkeypatch.setenv("AUDITAGENT_RETENTION_FLOOR_DAYS", "7")
    return fresh_settings
