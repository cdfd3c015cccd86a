"""`auditagent retention run | policy set | policy list | policy delete`.

Also registers the `holds`, `erasure` and `checkpoint` groups (cli/holds.py, cli/checkpoint.py),
which belong with retention.

`retention run` keeps stdout to ONE summary line (for cron); progress goes to stderr, and only
when stderr is a terminal. Without --yes it refuses unless a terminal confirms.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import Engine

from .. import retention
from ..errors import AuditagentError
from ..settings import Settings
from ..store import db


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("retention", help="retention policies and runs")
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
    run.add_argument("--now", help=argparse.SUPPRESS)  # a fixed clock, for tests
    run.add_argument("--max-batches", type=int, help=argparse.SUPPRESS)
    run.set_defaults(func=_run)

    pol = rsub.add_parser("policy", help="retention policies")
    psub = pol.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    pset = psub.add_parser("set", help="create or replace a policy")
    pset.add_argument("--tenant", required=True)
    pset.add_argument("--agent", help="only sessions with this agent label")
    pset.add_argument("--keep-days", type=int, required=True, help="days kept after a session ends")
    pset.set_defaults(func=_policy_set)
    plist = psub.add_parser("list", help="list policies and the default")
    plist.add_argument("--tenant")
    plist.set_defaults(func=_policy_list)
    pdel = psub.add_parser("delete", help="remove a policy (the default then applies)")
    pdel.add_argument("--tenant", required=True)
    pdel.add_argument("--agent")
    pdel.set_defaults(func=_policy_delete)

    from . import checkpoint, holds

    holds.register(sub)
    checkpoint.register(sub)


def cli_user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


@contextmanager
def engine_for(settings: Settings) -> Iterator[Engine]:
    engine = db.make_engine(settings)
    try:
        db.ensure_schema_current(engine)
        yield engine
    finally:
        engine.dispose()


def parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise AuditagentError(
            f"--now {value!r} is not an ISO 8601 time", fix="use e.g. 2031-01-01T00:00:00+00:00"
        ) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


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


def _run(args: argparse.Namespace, settings: Settings) -> int:
    now = parse_now(args.now)
    if args.batch_size < 1:
        raise AuditagentError("--batch-size must be at least 1", fix="pass a positive number")
    with engine_for(settings) as engine:
        plan = retention.run_retention(engine, settings, now=now, tenant=args.tenant, dry_run=True)
        if args.dry_run:
            print(plan.summary())
            return 0
        if not plan.candidates:
            print(plan.summary().replace("dry run: would delete", "run: nothing to delete;", 1))
            return 0
        if not args.yes:
            if not (sys.stdin.isatty() and sys.stderr.isatty()):
                print(plan.summary())
                raise AuditagentError(
                    "refusing to delete without confirmation", fix="pass --yes to run unattended"
                )
            sys.stderr.write(
                f"delete {len(plan.candidates)} sessions ({plan.events_planned} events)? [y/N] "
            )
            sys.stderr.flush()
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                print("retention run: cancelled, nothing deleted")
                return 1
        bar = _Bar()
        try:
            report = retention.run_retention(
                engine,
                settings,
                now=now,
                tenant=args.tenant,
                batch_size=args.batch_size,
                max_batches=args.max_batches,
                trigger="cli",
                requested_by=cli_user(),
                progress=bar,
            )
        finally:
            bar.end()
    print(report.summary())
    return 0 if report.ok else 1


def _policy_set(args: argparse.Namespace, settings: Settings) -> int:
    with engine_for(settings) as engine:
        p = retention.set_policy(
            engine,
            settings,
            tenant=args.tenant,
            agent=args.agent,
            keep_days=args.keep_days,
            created_by=cli_user(),
        )
    print(f"policy tenant={p.tenant} agent={p.agent or '*'} keep_days={p.keep_days}")
    return 0


def _policy_list(args: argparse.Namespace, settings: Settings) -> int:
    from ..store import retention as store

    with engine_for(settings) as engine:
        policies = store.list_policies(engine, tenant=args.tenant)
    print(
        f"default keep_days={settings.retention_default_days} "
        f"(floor {settings.retention_floor_days})"
    )
    for p in policies:
        print(f"tenant={p.tenant} agent={p.agent or '*'} keep_days={p.keep_days} by {p.created_by}")
    return 0


def _policy_delete(args: argparse.Namespace, settings: Settings) -> int:
    with engine_for(settings) as engine:
        p = retention.remove_policy(engine, tenant=args.tenant, agent=args.agent)
    print(f"removed policy tenant={p.tenant} agent={p.agent or '*'}")
    return 0
