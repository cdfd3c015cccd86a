"""`auditagent retention policy set | list | delete` and `auditagent retention adopt`."""

from __future__ import annotations

import argparse

from .. import retention
from ..settings import Settings
from ..store.policies import list_policies
from ._common import (
    add_operator,
    checkpoint_sink,
    engine_for,
    log_action,
    operator,
)


def register(rsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    op = operator(args)
    with engine_for(settings) as engine:
        log_action(
            engine,
            op,
            "retention.policies.list",
            command="retention policy list",
            tenant=args.tenant,
        )
        policies = list_policies(engine, tenant=args.tenant, history=args.history)
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
