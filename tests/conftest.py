"""Shared fixtures: a real Postgres database per test run, created and dropped here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from auditagent.settings import Settings
from auditagent.store import db
from tests.pgbouncer import POOLER_ENV, PrivatePgBouncer, private_pgbouncer

ADMIN_URL = os.environ.get(
    "AUDITAGENT_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _server_url(dbname: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def _create_database(prefix: str = "auditagent_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.exit(
            f"no Postgres server at {ADMIN_URL}: start it or set AUDITAGENT_TEST_ADMIN_URL ({exc})",
            returncode=3,
        )
    return name


def _drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's AUDITAGENT_* settings."""
    for key in list(os.environ):
        if key.startswith("AUDITAGENT_") and not key.startswith("AUDITAGENT_TEST_"):
            monkeypatch.delenv(key, raising=False)


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
        name = _create_database()
        created.append(name)
        url = db.sqlalchemy_url(_server_url(name))
        if pooler is not None:
            url = pooler.route(url)
        db.upgrade(Settings(database_url=url, data_dir=Path("/nonexistent")), url=url)
        return url

    yield make
    for name in created:
        _drop_database(name)


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
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"
