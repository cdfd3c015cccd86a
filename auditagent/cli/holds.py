"""`auditagent holds add | list | release` and `auditagent erasure` (registered by
cli/retention.py)."""

from __future__ import annotations

import argparse
import sys
import uuid

from .. import retention
from ..errors import AuditagentError
from ..keys import load_key_provider
from ..settings import Settings
from ..store import retention as store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("holds", help="legal holds (survive retention and erasure)")
    hsub = p.add_subparsers(dest="holds_command", metavar="ACTION", required=True)
    add = hsub.add_parser("add", help="place a hold on a session, a participant or a tenant")
    add.add_argument("--tenant", required=True)
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("--session", type=uuid.UUID, help="hold one session")
    what.add_argument("--participant", help="hold every session of this participant identity")
    what.add_argument("--whole-tenant", action="store_true", help="hold the whole tenant")
    add.add_argument("--reason", required=True, help="case or matter reference")
    add.set_defaults(func=_add)
    lst = hsub.add_parser("list", help="list holds")
    lst.add_argument("--tenant")
    lst.add_argument("--all", action="store_true", help="include released holds")
    lst.set_defaults(func=_list)
    rel = hsub.add_parser("release", help="release a hold (recorded with who and why)")
    rel.add_argument("hold_id", type=uuid.UUID)
    rel.add_argument("--reason", required=True)
    rel.set_defaults(func=_release)

    er = sub.add_parser(
        "erasure", help="erase a participant (GDPR Art. 17): crypto-shred, then purge"
    )
    er.add_argument("--tenant", required=True)
    er.add_argument("--participant", required=True)
    er.add_argument("--reason", required=True, help="request reference (no personal data)")
    er.add_argument("--yes", action="store_true", help="do it without asking")
    er.set_defaults(func=_erasure)


def _add(args: argparse.Namespace, settings: Settings) -> int:
    from .retention import cli_user, engine_for

    scope: retention.HoldScope = (
        "session" if args.session else "participant" if args.participant else "tenant"
    )
    with engine_for(settings) as engine:
        hold = retention.create_hold(
            engine,
            load_key_provider(settings),
            scope=scope,
            tenant=args.tenant,
            reason=args.reason,
            created_by=cli_user(),
            session_id=args.session,
            participant=args.participant,
        )
    print(f"hold {hold.id} placed (scope {hold.scope}, tenant {hold.tenant})")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from .retention import engine_for

    with engine_for(settings) as engine:
        holds = store.list_holds(engine, tenant=args.tenant, include_released=args.all)
    for h in holds:
        target = (
            str(h.session_id)
            if h.session_id
            else (
                "participant " + h.participant_index.hex()[:12] if h.participant_index else "tenant"
            )
        )
        state = (
            f"released {h.released_at.isoformat()} by {h.released_by}: {h.release_reason}"
            if h.released_at
            else "active"
        )
        print(
            f"{h.id} {h.scope} tenant={h.tenant} {target} by {h.created_by} "
            f"{h.created_at.isoformat()} reason={h.reason!r} {state}"
        )
    return 0


def _release(args: argparse.Namespace, settings: Settings) -> int:
    from .retention import cli_user, engine_for

    with engine_for(settings) as engine:
        hold = retention.release_hold(
            engine, args.hold_id, released_by=cli_user(), reason=args.reason, tenant=None
        )
    print(f"hold {hold.id} released")
    return 0


def _erasure(args: argparse.Namespace, settings: Settings) -> int:
    from .retention import cli_user, engine_for

    if not args.yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise AuditagentError(
                "refusing to erase without confirmation", fix="pass --yes to run unattended"
            )
        sys.stderr.write(f"erase every session of this participant in {args.tenant}? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("erasure: cancelled, nothing erased")
            return 1
    with engine_for(settings) as engine:
        report = retention.erase_participant(
            engine,
            load_key_provider(settings),
            tenant=args.tenant,
            participant=args.participant,
            reason=args.reason,
            requested_by=cli_user(),
        )
    print(
        f"erasure run {report.run_id}: {report.sessions_shredded} sessions shredded, "
        f"{report.sessions_deleted} purged ({report.events_deleted} events), "
        f"{report.errors} errors"
    )
    return 0 if report.ok else 1
