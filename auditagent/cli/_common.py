"""What every admin command shares: the operator's identity, the access-log row written before
the action, the retention path's engine, time parsing and the checkpoint sink."""

from __future__ import annotations

import argparse
import getpass
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine

from ..errors import AuditagentError
from ..settings import Settings
from ..store import db
from ..store.access_log import AccessEntry, append_access


def add_operator(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--as",
        dest="operator",
        metavar="NAME",
        help="who is acting (kept in the access log and on the change); default: the OS user",
    )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def cli_user() -> str:
    return f"cli:{_os_user()}"


@dataclass(frozen=True)
class Operator:
    name: str
    os_user: str


def operator(args: argparse.Namespace) -> Operator:
    given = (getattr(args, "operator", None) or "").strip()
    os_user = _os_user()
    if given and any(not ch.isprintable() for ch in given):
        raise AuditagentError("--as must be printable text", fix="pass a plain name")
    name = f"{given} (cli, os user {os_user})" if given else f"cli:{os_user}"
    return Operator(name=name[:256], os_user=os_user)


def log_action(
    engine: Engine,
    op: Operator,
    action: str,
    *,
    command: str,
    tenant: str | None = None,
    session_id: uuid.UUID | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """The access-log row of a CLI admin action, committed before the action (fail closed:
    ``AccessLogUnavailable`` stops it)."""
    append_access(
        engine,
        AccessEntry(
            action=action,
            principal_name=op.name,
            role="operator",
            tenant=tenant,
            session_id=session_id,
            route=f"cli {command}"[:256],
            reason=reason,
            correlation_id=uuid.uuid4().hex,
            detail={"via": "cli", "os_user": op.os_user, **(detail or {})},
        ),
    )


@contextmanager
def engine_for(settings: Settings) -> Iterator[Engine]:
    """The retention path's engine: AUDITAGENT_RETENTION_DATABASE_URL when set (the owner
    role; the application role may not change what decides expiry), else the usual one."""
    url = (
        db.sqlalchemy_url(settings.retention_database_url)
        if settings.retention_database_url
        else None
    )
    engine = db.make_engine(settings, url=url)
    try:
        db.ensure_schema_current(engine)
        yield engine
    finally:
        engine.dispose()


def parse_time(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise AuditagentError(
            f"{flag} {value!r} is not an ISO 8601 time", fix="use e.g. 2031-01-01T00:00:00+00:00"
        ) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def parse_now(value: str | None) -> datetime | None:
    return parse_time(value, "--now")


def checkpoint_sink(settings: Settings) -> Any:
    from ..integrity.checkpoints import default_sink

    return default_sink(settings)
