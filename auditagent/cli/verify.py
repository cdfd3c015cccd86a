"""`auditagent verify SESSION_ID | --all | --bundle FILE`: recompute hash chains, no key needed.

The report is plain (``3/3 sessions valid``) and the exit status is non-zero on any failure, so
it can gate a compliance job.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

from ..errors import AuditagentError, ConfigError, NotFound
from ..review import check_bundle
from ..settings import Settings
from ..store import db, reader
from ..store import retention as store_retention

EXIT_INVALID = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("verify", help="verify hash chains (sessions or an export bundle)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("session_id", nargs="?", help="one session id")
    what.add_argument("--all", action="store_true", help="every session")
    what.add_argument("--bundle", type=Path, metavar="FILE", help="an exported evidence bundle")
    p.add_argument("--tenant", default=None, help="with --all: only this tenant")
    p.add_argument(
        "--checkpoints",
        type=Path,
        metavar="DIR",
        help="with --all: also hold the database to the signed checkpoints in DIR",
    )
    p.add_argument(
        "--public-key",
        default=None,
        help="with --checkpoints: base64 key (or a file) from `auditagent keys public`; "
        "default: the keyring's",
    )
    p.set_defaults(func=_verify)


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    if args.checkpoints is not None and not args.all:
        raise ConfigError(
            "--checkpoints needs --all", fix="run `auditagent verify --all --checkpoints DIR`"
        )
    if args.bundle is not None:
        return _verify_bundle(args.bundle)
    if args.all:
        code = _verify_all(settings, tenant=args.tenant)
        if args.checkpoints is not None:
            from .checkpoint import run_verify

            code = max(code, run_verify(settings, args.checkpoints, args.public_key))
        return code
    try:
        session_id = uuid.UUID(args.session_id)
    except ValueError:
        raise AuditagentError(
            f"{args.session_id!r} is not a session id", fix="pass a UUID, --all or --bundle FILE"
        ) from None
    return _verify_one(settings, session_id)


def _report(session_id: object, ok: bool, first_bad: int | None, reason: str | None) -> str:
    if ok:
        return f"session {session_id}: valid"
    where = f"first bad seq {first_bad}: " if first_bad is not None else ""
    return f"session {session_id}: {where}{reason}"


def _verify_one(settings: Settings, session_id: uuid.UUID) -> int:
    engine = db.make_engine(settings)
    try:
        db.ensure_schema_current(engine)
        with engine.connect() as conn:
            session = reader.get_session(conn, session_id)
            if session is None:
                raise NotFound(f"no session {session_id}", fix="check the id")
            result = reader.verify_session(conn, session)
    finally:
        engine.dispose()
    print(_report(session_id, result.ok, result.first_bad_seq, result.reason))
    print(f"{1 if result.ok else 0}/1 sessions valid, {result.events} events verified")
    return 0 if result.ok else EXIT_INVALID


def _verify_all(settings: Settings, *, tenant: str | None) -> int:
    engine = db.make_engine(settings)
    total = valid = events = 0
    try:
        db.ensure_schema_current(engine)
        with engine.connect() as sessions_conn, engine.connect() as events_conn:
            for session in reader.iter_all_sessions(sessions_conn, tenant=tenant):
                if session.status in ("shredded", "purged"):
                    # Removed by retention or erasure: what stands for it is its deletion record.
                    total += 1
                    if store_retention.has_deletion_record(events_conn, session.id):
                        valid += 1
                    else:
                        print(f"session {session.id}: {session.status} without a deletion record")
                    continue
                result = reader.verify_session(events_conn, session)
                total += 1
                events += result.events
                if result.ok:
                    valid += 1
                else:
                    print(_report(session.id, False, result.first_bad_seq, result.reason))
    finally:
        engine.dispose()
    print(f"{valid}/{total} sessions valid, {events} events verified")
    return 0 if valid == total else EXIT_INVALID


def _verify_bundle(path: Path) -> int:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise AuditagentError(f"no file {path}", fix="check the path") from None
    except (OSError, ValueError) as exc:
        print(f"bundle {path}: unreadable ({type(exc).__name__})", file=sys.stderr)
        return EXIT_INVALID
    check = check_bundle(doc)
    print(_report(check.session_id, check.ok, check.first_bad_seq, check.reason))
    print(f"{1 if check.ok else 0}/1 bundles valid, {check.events} events verified")
    return 0 if check.ok else EXIT_INVALID
