"""`auditagent retention run | report | policy set | policy list | policy delete`.

Also registers the `holds`, `erasure` and `checkpoint` groups (cli/holds.py, cli/checkpoint.py),
which belong with retention.

`retention run` keeps stdout to ONE summary line (for cron), also when interrupted (Ctrl-C,
SIGTERM); progress goes to stderr, and only when stderr is a terminal. Without --yes it refuses
unless a terminal confirms, and it then deletes at most the sessions it asked about. Every
admin action writes an access-log row first, naming the operator (`--as NAME`, else the OS
user); if that row cannot be written nothing is done.
"""

from __future__ import annotations

import argparse
import getpass
import json
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import Engine

from .. import retention
from ..errors import AuditagentError
from ..settings import Settings
from ..store import db


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("retention", help="retention policies, runs and the deletion report")
    rsub = p.add_subparsers(dest="retention_command", metavar="SUBCOMMAND", required=True)

    run = rsub.add_parser(
        "run", help="delete expired, unheld sessions (shred keys, then delete rows in batches)"
    )
    run.add_argument("--dry-run", action="store_true", help="only report; change nothing")
    run.add_argument("--tenant", help="only this tenant")
    run.add_argument("--yes", action="store_true", help="do it without asking (cron)")
    run.add_argument(
        "--batch-size",
        type=int,
        default=retention.DEFAULT_BATCH_SIZE,
        help="events deleted per transaction (default %(default)s)",
    )
    # A fixed clock: to look back, or to plan ahead with --dry-run. A run never uses a clock
    # later than the database's.
    run.add_argument("--now", help=argparse.SUPPRESS)
    run.add_argument("--max-batches", type=int, help=argparse.SUPPRESS)
    add_operator(run)
    run.set_defaults(func=_run)

    rep = rsub.add_parser(
        "report",
        help="deletion records and runs with their basis and verification; "
        "--bundle writes the signed certificate",
    )
    rep.add_argument("--from", dest="start", help="deleted at or after (ISO 8601)")
    rep.add_argument("--to", dest="end", help="deleted before (ISO 8601)")
    rep.add_argument("--tenant")
    rep.add_argument("--bundle", type=Path, metavar="FILE", help="write the signed certificate")
    rep.add_argument(
        "--check", type=Path, metavar="FILE", help="check a certificate offline instead"
    )
    rep.add_argument(
        "--public-key",
        help="with --check: base64 key (or a file) from `auditagent keys public`; "
        "default: the keyring's",
    )
    add_operator(rep)
    rep.set_defaults(func=_report)

    adopt = rsub.add_parser(
        "adopt",
        help="once, after upgrading to signed retention: sign the existing policies, holds and "
        "deletion records into the change log (lists them; --yes to do it)",
    )
    adopt.add_argument("--yes", action="store_true", help="adopt what is listed")
    add_operator(adopt)
    adopt.set_defaults(func=_adopt)

    pol = rsub.add_parser("policy", help="retention policies")
    psub = pol.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    pset = psub.add_parser("set", help="write a new version of a policy (calendar terms)")
    pset.add_argument("--tenant", required=True)
    pset.add_argument("--agent", help="only sessions with this agent label")
    pset.add_argument("--keep-years", type=int, help="calendar years kept after a session ends")
    pset.add_argument("--keep-months", type=int, help="calendar months (added to the years)")
    pset.add_argument("--keep-days", type=int, help="days (added to the years and months)")
    add_operator(pset)
    pset.set_defaults(func=_policy_set)
    plist = psub.add_parser("list", help="list policies, the default and the floor")
    plist.add_argument("--tenant")
    plist.add_argument("--history", action="store_true", help="every version, removed ones too")
    add_operator(plist)
    plist.set_defaults(func=_policy_list)
    pdel = psub.add_parser("delete", help="remove a policy (the default then applies)")
    pdel.add_argument("--tenant", required=True)
    pdel.add_argument("--agent")
    add_operator(pdel)
    pdel.set_defaults(func=_policy_delete)

    from . import checkpoint, holds

    holds.register(sub)
    checkpoint.register(sub)


# --- operator identity and the access log -----------------------------------------------------


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
    from ..store.admin import AccessEntry, append_access

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
    from ..checkpoints import default_sink

    return default_sink(settings)


# --- run --------------------------------------------------------------------------------------


class _Bar:
    """A one-line progress bar on stderr, only on a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int, events: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * done // total if total else width
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} sessions, "
            f"{events} events deleted"
        )
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so the run records where it stopped and the summary
    line is still printed (a BaseException: no per-session handler may swallow it)."""


@contextmanager
def _sigterm_stops_run() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from ..keys import load_key_provider
    from ..store import retention as store

    now = parse_now(args.now)
    if args.batch_size < 1:
        raise AuditagentError("--batch-size must be at least 1", fix="pass a positive number")
    op = operator(args)
    with engine_for(settings) as engine:
        if now is not None and not args.dry_run:
            db_now = store.db_clock(engine)
            if now > db_now:
                raise retention.ClockAhead(now, db_now)
        plan = retention.plan_retention(engine, settings, now=now, tenant=args.tenant)
        detail = {
            "dry_run": args.dry_run,
            "sessions_matched": plan.matched,
            "events_planned": plan.events_planned,
            "now": now.isoformat() if now else None,
        }
        if args.dry_run:
            log_action(
                engine,
                op,
                "retention.plan",
                command="retention run",
                tenant=args.tenant,
                detail=detail,
            )
            print(plan.summary())
            return 0
        # Nothing to delete needs no confirmation; the run is still recorded and checkpointed.
        if not args.yes and plan.candidates:
            if not (sys.stdin.isatty() and sys.stderr.isatty()):
                print(plan.summary())
                raise AuditagentError(
                    "refusing to delete without confirmation", fix="pass --yes to run unattended"
                )
            sys.stderr.write(
                f"delete {plan.matched} sessions ({plan.events_planned} events)? "
                "Only these, each re-checked. [y/N] "
            )
            sys.stderr.flush()
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                print("retention run: cancelled, nothing deleted")
                return 1
        keys = load_key_provider(settings)
        log_action(
            engine, op, "retention.run", command="retention run", tenant=args.tenant, detail=detail
        )
        bar = _Bar()
        code = 0
        try:
            with _sigterm_stops_run():
                retention.execute_plan(
                    engine,
                    settings,
                    plan,
                    key_provider=keys,
                    batch_size=args.batch_size,
                    max_batches=args.max_batches,
                    trigger="cli",
                    requested_by=op.name,
                    progress=bar,
                )
        except KeyboardInterrupt:
            code = 130
        except _Terminated:
            code = 143
        finally:
            bar.end()
    if plan.run_id is None:
        print("retention run: stopped before it started, nothing deleted")
        return code or 1
    print(plan.summary())
    return code or (0 if plan.ok else 1)


# --- report -----------------------------------------------------------------------------------


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from .. import retention_proof
    from ..checkpoints import load_public_key
    from ..keys import load_key_provider

    if args.check is not None:
        key = load_public_key(args.public_key, lambda: load_key_provider(settings))
        try:
            doc = json.loads(args.check.read_bytes())
        except FileNotFoundError:
            raise AuditagentError(f"no file {args.check}", fix="check the path") from None
        except (OSError, ValueError) as exc:
            print(f"certificate {args.check}: unreadable ({type(exc).__name__})")
            return 1
        check = retention_proof.check_certificate(doc, key)
        if check.ok:
            print(
                f"certificate {args.check}: valid, {check.records} deletion records and "
                f"{check.runs} runs, signed by the checkpoint key"
            )
            return 0
        print(f"certificate {args.check}: INVALID: {check.reason}")
        return 1
    start = parse_time(args.start, "--from")
    end = parse_time(args.end, "--to")
    op = operator(args)
    keys = load_key_provider(settings)
    with engine_for(settings) as engine:
        log_action(
            engine,
            op,
            "deletions.report",
            command="retention report",
            tenant=args.tenant,
            detail={"bundle": args.bundle is not None},
        )
        report = retention_proof.deletion_report(
            engine,
            public_key=keys.signing_public_key(),
            tenant=args.tenant,
            start=start,
            end=end,
        )
    for e in report.entries:
        r = e.record
        state = "valid" if e.valid else "INVALID: " + "; ".join(e.problems)
        print(
            f"deletion {r.seq} {r.deleted_at.isoformat()} session {r.session_id} "
            f"tenant={r.tenant} {r.reason} ({r.policy}) {r.event_count} events: {state}"
        )
    for run in report.runs:
        print(
            f"run {run.id} {run.trigger} {run.status} started {run.started_at.isoformat()} "
            f"by {run.requested_by}: {run.sessions_matched} matched, {run.sessions_deleted} "
            f"deleted, {run.sessions_skipped_held} held, {run.errors} errors"
        )
    valid = sum(1 for e in report.entries if e.valid)
    print(
        f"{valid}/{len(report.entries)} deletion records valid, {len(report.runs)} runs; "
        f"deletion chain {'valid' if report.chain.ok else 'BROKEN'} ({report.chain.count} "
        f"records), change log {'valid' if report.changes.ok else 'BROKEN'} "
        f"({report.changes.count} entries)"
    )
    for problem in report.changes.problems:
        print(f"change log: {problem}")
    if args.bundle is not None:
        doc = retention_proof.certificate(report, retention.signer_for(keys), generated_by=op.name)
        args.bundle.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        print(f"certificate written to {args.bundle}")
    return 0 if report.ok else 1


# --- policies ---------------------------------------------------------------------------------


def _policy_set(args: argparse.Namespace, settings: Settings) -> int:
    op = operator(args)
    with engine_for(settings) as engine:
        log_action(
            engine,
            op,
            "retention.policies.put",
            command="retention policy set",
            tenant=args.tenant,
            detail={
                "agent": args.agent,
                "keep_years": args.keep_years,
                "keep_months": args.keep_months,
                "keep_days": args.keep_days,
            },
        )
        p = retention.set_policy(
            engine,
            settings,
            tenant=args.tenant,
            agent=args.agent,
            keep_days=args.keep_days,
            keep_months=args.keep_months,
            keep_years=args.keep_years,
            created_by=op.name,
            sink=checkpoint_sink(settings),
        )
    print(f"policy tenant={p.tenant} agent={p.agent or '*'} {p.period} (version {p.version})")
    return 0


def _policy_list(args: argparse.Namespace, settings: Settings) -> int:
    from ..store import retention as store

    op = operator(args)
    with engine_for(settings) as engine:
        log_action(
            engine,
            op,
            "retention.policies.list",
            command="retention policy list",
            tenant=args.tenant,
        )
        policies = store.list_policies(engine, tenant=args.tenant, history=args.history)
    print(f"default {settings.retention_default} (floor {settings.retention_floor})")
    for p in policies:
        state = " removed" if p.deleted else ""
        print(
            f"tenant={p.tenant} agent={p.agent or '*'} {p.period} version {p.version}{state} "
            f"by {p.created_by}"
        )
    return 0


def _policy_delete(args: argparse.Namespace, settings: Settings) -> int:
    op = operator(args)
    with engine_for(settings) as engine:
        log_action(
            engine,
            op,
            "retention.policies.delete",
            command="retention policy delete",
            tenant=args.tenant,
            detail={"agent": args.agent},
        )
        p = retention.remove_policy(
            engine,
            settings,
            tenant=args.tenant,
            agent=args.agent,
            removed_by=op.name,
            sink=checkpoint_sink(settings),
        )
    print(f"removed policy tenant={p.tenant} agent={p.agent or '*'} ({p.period})")
    return 0


def _adopt(args: argparse.Namespace, settings: Settings) -> int:
    op = operator(args)
    with engine_for(settings) as engine:
        log_action(
            engine,
            op,
            "retention.adopt",
            command="retention adopt",
            detail={"dry_run": not args.yes},
        )
        found = retention.adopt_legacy(
            engine,
            settings,
            adopted_by=op.name,
            dry_run=not args.yes,
            sink=checkpoint_sink(settings),
        )
    for p in found.policies:
        print(
            f"policy tenant={p.tenant} agent={p.agent or '*'} {p.period} version {p.version} "
            f"by {p.created_by} at {p.created_at.isoformat()}"
        )
    for h in found.holds:
        print(f"hold {h.id} {h.scope} tenant={h.tenant} by {h.created_by} reason={h.reason!r}")
    if found.deletion_records:
        print(f"deletion records 0..{found.deletion_records - 1} (unsigned, chain verified)")
    verb = "adopted" if args.yes else "would adopt"
    print(
        f"retention adopt: {verb} {len(found.policies)} policies, {len(found.holds)} holds, "
        f"{found.deletion_records} deletion records"
        + ("" if args.yes or found.empty else "; pass --yes to sign them into the change log")
    )
    return 0
