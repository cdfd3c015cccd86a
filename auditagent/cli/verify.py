"""`auditagent verify SESSION_ID | --all | --bundle FILE`: recompute hash chains, no data key.

Sessions are held to their sessions row and, when the checkpoint directory
(``AUDITAGENT_CHECKPOINT_DIR``) has them, to the signed checkpoints the recorder writes when a
session closes: those live outside the database, so a superuser who deletes rows and rewrites
a session's count and head, recomputes a whole chain, or deletes a session is caught. A bundle
is checked against the service's Ed25519 public key.

The report is plain (``3/3 sessions valid``) and the exit status is non-zero on any failure, so
it can gate a compliance job.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

from sqlalchemy import Engine

from ..audio.integrity import audio_verdict
from ..errors import AuditagentError, ConfigError, NotFound
from ..integrity import checkpoints
from ..keys import load_key_provider
from ..reading.bundle import check_bundle
from ..settings import Settings
from ..store import db, deletions, reader
from ..store.heads import session_heads

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
        help="with --all: also hold the database to the global checkpoints and deletion chain "
        "signed into DIR (session checkpoints in AUDITAGENT_CHECKPOINT_DIR are always checked)",
    )
    p.add_argument(
        "--public-key",
        default=None,
        help="the service's Ed25519 public key, base64 or a file holding it (from "
        "`auditagent keys public`), for checkpoints and bundles; default: the keyring's",
    )
    p.set_defaults(func=_verify)


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    if args.checkpoints is not None and not args.all:
        raise ConfigError(
            "--checkpoints needs --all", fix="run `auditagent verify --all --checkpoints DIR`"
        )
    if args.bundle is not None:
        return _verify_bundle(args.bundle, _public_key(settings, args.public_key, "the bundle"))
    if args.all:
        code = _verify_all(settings, tenant=args.tenant, public_key_arg=args.public_key)
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
    return _verify_one(settings, session_id, public_key_arg=args.public_key)


def _public_key(settings: Settings, value: str | None, what: str) -> bytes:
    """``--public-key``, else the keyring's; a one-line error naming the fix without either."""
    try:
        return checkpoints.load_public_key(value, lambda: load_key_provider(settings))
    except ConfigError as exc:
        if value is not None:
            raise
        raise ConfigError(
            f"{what} is signed, and there is no public key to check it with ({exc.message})",
            fix="pass --public-key with the output of `auditagent keys public` on the service",
        ) from None


def _report(session_id: object, ok: bool, first_bad: int | None, reason: str | None) -> str:
    if ok:
        return f"session {session_id}: valid"
    where = f"first bad seq {first_bad}: " if first_bad is not None else ""
    return f"session {session_id}: {where}{reason}"


def _sink(settings: Settings) -> checkpoints.DirectorySink:
    return checkpoints.default_sink(settings)


def _removed(engine: Engine, session_id: uuid.UUID, committed: int) -> str | None:
    """Why a session absent from the database is not a failure: a deletion record of the
    retention path accounts for at least what its checkpoint committed. None otherwise."""
    records = deletions.deletion_records_for(engine, session_id)
    if records and records[-1].event_count >= committed:
        return "removed by retention (deletion record)"
    return None


def _missing(session_id: uuid.UUID, c: checkpoints.SessionCommitment) -> str:
    return (
        f"session {session_id}: missing from the database, but its signed checkpoint "
        f"{c.where} commits to {c.count} events"
    )


def _verify_one(settings: Settings, session_id: uuid.UUID, *, public_key_arg: str | None) -> int:
    sink = _sink(settings)
    commitment: checkpoints.SessionCommitment | None = None
    if sink.get(checkpoints.session_checkpoint_name(session_id)) is not None:
        key = _public_key(settings, public_key_arg, f"session {session_id}'s checkpoint")
        commitment = checkpoints.session_commitment(sink, session_id, public_key=key)
    engine = db.make_engine(settings)
    try:
        db.ensure_schema_current(engine)
        with engine.connect() as conn:
            session = reader.get_session(conn, session_id)
            if session is None:
                if commitment is None:
                    raise NotFound(f"no session {session_id}", fix="check the id")
                gone = _removed(engine, session_id, commitment.count)
                if gone is None:
                    print(_missing(session_id, commitment))
                    print("0/1 sessions valid, 0 events verified")
                    return EXIT_INVALID
                print(f"session {session_id}: {gone}")
                print("1/1 sessions valid, 0 events verified")
                return 0
            if session.status in ("shredded", "purged"):
                ok = deletions.has_deletion_record(conn, session.id)
                print(
                    f"session {session_id}: "
                    + (
                        f"{session.status} by retention (deletion record)"
                        if ok
                        else f"{session.status} without a deletion record"
                    )
                )
                print(f"{int(ok)}/1 sessions valid, 0 events verified")
                return 0 if ok else EXIT_INVALID
            result = reader.verify_session(
                conn,
                session,
                checkpoint=commitment.expected if commitment else None,
                problem=commitment.problem if commitment else None,
            )
            audio = (
                audio_verdict(conn, session, lambda: load_key_provider(settings))
                if result.ok
                else None
            )
    finally:
        engine.dispose()
    ok = result.ok and (audio is None or audio[0])
    print(_report(session_id, result.ok, result.first_bad_seq, result.reason))
    if audio is not None:
        print(f"session {session_id}: {audio[1]}")
    print(f"{1 if ok else 0}/1 sessions valid, {result.events} events verified")
    return 0 if ok else EXIT_INVALID


def _has_session_notes(sink: checkpoints.DirectorySink) -> bool:
    if not sink.directory.is_dir():
        return False
    return any(
        p.name.startswith("session-") and p.name.endswith(checkpoints.NOTE_SUFFIX)
        for p in sink.directory.iterdir()
    )


def _verify_all(settings: Settings, *, tenant: str | None, public_key_arg: str | None) -> int:
    sink = _sink(settings)
    commitments: dict[uuid.UUID, checkpoints.SessionCommitment] = {}
    problems: list[str] = []
    if _has_session_notes(sink):
        key = _public_key(settings, public_key_arg, f"the checkpoints in {sink.directory}")
        commitments, problems = checkpoints.session_commitments(sink, public_key=key)
    for line in problems:
        print(line)
    engine = db.make_engine(settings)
    total = valid = events = 0
    seen: set[uuid.UUID] = set()
    try:
        db.ensure_schema_current(engine)
        with engine.connect() as sessions_conn, engine.connect() as events_conn:
            for session in reader.iter_all_sessions(sessions_conn, tenant=tenant):
                seen.add(session.id)
                total += 1
                if session.status in ("shredded", "purged"):
                    # Removed by retention or erasure: what stands for it is its deletion record.
                    if deletions.has_deletion_record(events_conn, session.id):
                        valid += 1
                    else:
                        print(f"session {session.id}: {session.status} without a deletion record")
                    continue
                c = commitments.get(session.id)
                result = reader.verify_session(
                    events_conn,
                    session,
                    checkpoint=c.expected if c else None,
                    problem=c.problem if c else None,
                )
                events += result.events
                if result.ok:
                    valid += 1
                else:
                    print(_report(session.id, False, result.first_bad_seq, result.reason))
            # Sessions a checkpoint commits to that the database no longer has. With --tenant
            # those of other tenants are still in the database and are left to their tenant.
            unseen = [sid for sid in commitments if sid not in seen]
            present = set(session_heads(engine, unseen)) if unseen else set()
            for sid in sorted(unseen, key=str):
                if sid in present:
                    continue
                total += 1
                c = commitments[sid]
                gone = _removed(engine, sid, c.count)
                if gone is None:
                    print(_missing(sid, c))
                else:
                    valid += 1
    finally:
        engine.dispose()
    print(f"{valid}/{total} sessions valid, {events} events verified")
    return 0 if valid == total and not problems else EXIT_INVALID


def _verify_bundle(path: Path, public_key: bytes) -> int:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise AuditagentError(f"no file {path}", fix="check the path") from None
    except (OSError, ValueError) as exc:
        print(f"bundle {path}: unreadable ({type(exc).__name__})", file=sys.stderr)
        return EXIT_INVALID
    check = check_bundle(doc, public_key=public_key)
    if check.ok:
        print(f"session {check.session_id}: valid (signature, chain, records)")
    else:
        for line in check.problems or (check.reason or "invalid",):
            print(f"session {check.session_id}: {line}")
    print(f"{1 if check.ok else 0}/1 bundles valid, {check.events} events verified")
    return 0 if check.ok else EXIT_INVALID
