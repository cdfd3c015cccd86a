"""Databases on the test Postgres server, created and dropped by name (the conftest fixtures
and the tests that need a database of their own, outside the migrated ones, use these)."""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest

ADMIN_URL = os.environ.get(
    "AUDITAGENT_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def server_url(dbname: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def create_database(prefix: str = "auditagent_test") -> str:
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


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
