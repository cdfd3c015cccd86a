"""`auditagent db upgrade | current`."""

from __future__ import annotations

import argparse

from ..settings import Settings
from ..store import db


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("db", help="database schema")
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dsub.add_parser("upgrade", help="migrate the schema to the newest revision")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_upgrade)
    cur = dsub.add_parser("current", help="show the schema revision; non-zero if out of date")
    cur.set_defaults(func=_current)


def _upgrade(args: argparse.Namespace, settings: Settings) -> int:
    url = db.resolve_database_url(settings)
    reached = db.upgrade(settings, url=url, revision=args.revision)
    print(f"database {db.describe_url(url)} is at revision {reached}")
    return 0


def _current(args: argparse.Namespace, settings: Settings) -> int:
    engine = db.make_engine(settings)
    try:
        db.ensure_schema_current(engine)
        print(f"database schema is current ({db.head_revision()})")
        return 0
    finally:
        engine.dispose()
