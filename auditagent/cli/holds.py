"""`auditagent holds add | list | release` and `auditagent erasure`.

Each says how many sessions it covers; a hold or an erasure that covers none is an error
unless --allow-empty. The participant identity can come from stdin (`--participant -`) or a
file (`--participant-file FILE`), so it stays out of `ps` and shell history.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

from .. import retention
from ..errors import AuditagentError
from ..keys import load_key_provider
from ..settings import Settings
from ..store.holds import list_holds
from ._common import add_operator, checkpoint_sink, engine_for, log_action, operator


def _participant_args(p: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup) -> None:
    p.add_argument(
        "--participant",
        help="the participant identity; `-` reads it from stdin (keeps it out of `ps`)",
    )
    p.add_argument(
        "--participant-file",
        type=Path,
        metavar="FILE",
        help="read the participant identity from FILE (its first line)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("holds", help="legal holds (survive retention and erasure)")
    hsub = p.add_subparsers(dest="holds_command", metavar="ACTION", required=True)
    add = hsub.add_parser("add", help="place a hold on a session, a participant or a tenant")
    add.add_argument("--tenant", required=True)
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("--session", type=uuid.UUID, help="hold one session")
    _participant_args(what)
    what.add_argument("--whole-tenant", action="store_true", help="hold the whole tenant")
    add.add_argument("--reason", required=True, help="case or matter reference")
    add.add_argument(
        "--allow-empty",
        action="store_true",
        help="place it even if it covers no session yet (e.g. before a participant's first call)",
    )
    add_operator(add)
    add.set_defaults(func=_add)
    lst = hsub.add_parser("list", help="list holds")
    lst.add_argument("--tenant")
    lst.add_argument("--all", action="store_true", help="include released holds")
    add_operator(lst)
    lst.set_defaults(func=_list)
    rel = hsub.add_parser("release", help="release a hold (recorded with who and why)")
    rel.add_argument("hold_id", type=uuid.UUID)
    rel.add_argument("--reason", required=True)
    add_operator(rel)
    rel.set_defaults(func=_release)

    er = sub.add_parser(
        "erasure", help="erase a participant (GDPR Art. 17): crypto-shred, then purge"
    )
    er.add_argument("--tenant", required=True)
    who = er.add_mutually_exclusive_group(required=True)
    _participant_args(who)
    er.add_argument("--reason", required=True, help="request reference (no personal data)")
    er.add_argument("--yes", action="store_true", help="do it without asking")
    er.add_argument(
        "--allow-empty",
        action="store_true",
        help="succeed even if the participant has no session (already erased)",
    )
    add_operator(er)
    er.set_defaults(func=_erasure)


def read_participant(args: argparse.Namespace) -> str | None:
    """The identity from --participant, --participant - (stdin) or --participant-file."""
    if getattr(args, "participant_file", None) is not None:
        path: Path = args.participant_file
        try:
            text_ = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AuditagentError(
                f"cannot read {path} ({type(exc).__name__})", fix="check --participant-file"
            ) from None
        value = text_.splitlines()[0].strip() if text_.strip() else ""
    elif args.participant == "-":
        value = sys.stdin.readline().strip()
    elif args.participant is not None:
        value = args.participant.strip()
    else:
        return None
    if not value:
        raise AuditagentError(
            "the participant identity is empty", fix="pass it on stdin or in the file"
        )
    return value


def _add(args: argparse.Namespace, settings: Settings) -> int:
    participant = read_participant(args)
    scope: retention.HoldScope = (
        "session" if args.session else "participant" if participant is not None else "tenant"
    )
    op = operator(args)
    keys = load_key_provider(settings)
    with engine_for(settings) as engine:
        log_action(
            engine,
            op,
            "holds.create",
            command="holds add",
            tenant=args.tenant,
            session_id=args.session,
            reason=args.reason,
            detail={"scope": scope, "allow_empty": args.allow_empty},
        )
        hold = retention.create_hold(
            engine,
            keys,
            scope=scope,
            tenant=args.tenant,
            reason=args.reason,
            created_by=op.name,
            session_id=args.session,
            participant=participant,
            allow_empty=args.allow_empty,
            sink=checkpoint_sink(settings),
        )
    print(
        f"hold {hold.id} placed (scope {hold.scope}, tenant {hold.tenant}), covering "
        f"{hold.sessions_covered} sessions"
    )
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    op = operator(args)
    with engine_for(settings) as engine:
        log_action(engine, op, "holds.list", command="holds list", tenant=args.tenant)
        holds = list_holds(engine, tenant=args.tenant, include_released=args.all)
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
    op = operator(args)
    keys = load_key_provider(settings)
    with engine_for(settings) as engine:
        log_action(
            engine,
            op,
            "holds.release",
            command="holds release",
            reason=args.reason,
            detail={"hold_id": str(args.hold_id)},
        )
        hold = retention.release_hold(
            engine,
            args.hold_id,
            released_by=op.name,
            reason=args.reason,
            tenant=None,
            key_provider=keys,
            sink=checkpoint_sink(settings),
        )
    print(f"hold {hold.id} released; it covered {hold.sessions_covered} sessions")
    return 0


def _erasure(args: argparse.Namespace, settings: Settings) -> int:
    participant = read_participant(args)
    assert participant is not None
    if not args.yes:
        if args.participant == "-" or not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise AuditagentError(
                "refusing to erase without confirmation", fix="pass --yes to run unattended"
            )
        sys.stderr.write(f"erase every session of this participant in {args.tenant}? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("erasure: cancelled, nothing erased")
            return 1
    op = operator(args)
    keys = load_key_provider(settings)
    with engine_for(settings) as engine:
        # The identity is personal data: the access log says an erasure was asked, never whom.
        log_action(
            engine,
            op,
            "erasure.request",
            command="erasure",
            tenant=args.tenant,
            reason=args.reason,
            detail={"allow_empty": args.allow_empty},
        )
        report = retention.erase_participant(
            engine,
            keys,
            settings=settings,
            tenant=args.tenant,
            participant=participant,
            reason=args.reason,
            requested_by=op.name,
            allow_empty=args.allow_empty,
        )
    checkpoint = (
        "checkpoint written"
        if report.checkpoint
        else f"checkpoint NOT written ({report.checkpoint_error})"
    )
    print(
        f"erasure run {report.run_id}: {report.matched} sessions matched, "
        f"{report.sessions_shredded} shredded, {report.sessions_deleted} purged "
        f"({report.events_deleted} events), {report.errors} errors; {checkpoint}"
    )
    return 0 if report.ok else 1
