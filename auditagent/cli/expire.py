"""`auditagent retention run | report | policy set | policy list | policy delete`.

The `report`, `adopt` and `policy` subcommands are in cli/report.py and cli/policies.py.

`retention run` keeps stdout to ONE summary line (for cron), also when interrupted (Ctrl-C,
SIGTERM); progress goes to stderr, and only when stderr is a terminal. Without --yes it refuses
unless a terminal confirms, and it then deletes at most the sessions it asked about. Every
admin action writes an access-log row first, naming the operator (`--as NAME`, else the OS
user); if that row cannot be written nothing is done.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from .. import retention
from ..errors import AuditagentError
from ..settings import Settings
from . import policies, report
from ._common import (
    add_operator,
    engine_for,
    log_action,
    operator,
    parse_now,
)


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

    report.register(rsub)
    policies.register(rsub)


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
    from ..store.locks import db_clock

    now = parse_now(args.now)
    if args.batch_size < 1:
        raise AuditagentError("--batch-size must be at least 1", fix="pass a positive number")
    op = operator(args)
    with engine_for(settings) as engine:
        if now is not None and not args.dry_run:
            db_now = db_clock(engine)
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
