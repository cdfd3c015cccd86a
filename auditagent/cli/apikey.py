"""`auditagent apikey create | list | revoke`."""

from __future__ import annotations

import argparse
import uuid

from ..errors import AuditagentError
from ..settings import Settings
from ..store import db
from ..store import principals as principal_store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("apikey", help="API keys for the review service")
    sub = p.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    create = sub.add_parser(
        "create", help="create a key; prints the token once, as the last line of output"
    )
    create.add_argument("--role", choices=principal_store.ROLES, required=True)
    create.add_argument(
        "--tenant", default=None, help="tenant the key is limited to (required for auditors)"
    )
    create.add_argument("--name", default=None, help="who holds the key (one key per person)")
    create.set_defaults(func=_create)
    ls = sub.add_parser("list", help="list keys (never their tokens)")
    ls.add_argument("--tenant", default=None)
    ls.set_defaults(func=_list)
    revoke = sub.add_parser("revoke", help="revoke a key by id; its next request gets 401")
    revoke.add_argument("id", help="key id from `auditagent apikey list`")
    revoke.set_defaults(func=_revoke)


def _create(args: argparse.Namespace, settings: Settings) -> int:
    engine = db.make_engine(settings)
    try:
        db.ensure_schema_current(engine)
        name = args.name or (f"{args.role}@{args.tenant}" if args.tenant else args.role)
        principal, token = principal_store.create_principal(
            engine, role=args.role, tenant=args.tenant, name=name
        )
    finally:
        engine.dispose()
    scope = principal.tenant or "all tenants"
    print(f"created {principal.role} key {principal.id} ({principal.name}, {scope})")
    print("store this token now; it is not kept and cannot be shown again:")
    # Last line, alone, so scripts can take it with `tail -n1`.
    print(token)
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    engine = db.make_engine(settings)
    try:
        db.ensure_schema_current(engine)
        principals = principal_store.list_principals(engine, tenant=args.tenant)
    finally:
        engine.dispose()
    if not principals:
        print("no API keys")
        return 0
    print(f"{'id':36}  {'role':7}  {'tenant':20}  {'prefix':10}  {'status':8}  name")
    for p in principals:
        status = "revoked" if p.revoked_at else "active"
        print(
            f"{p.id!s:36}  {p.role:7}  {(p.tenant or '*'):20}  {p.token_prefix:10}  "
            f"{status:8}  {p.name}"
        )
    return 0


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    try:
        key_id = uuid.UUID(args.id)
    except ValueError:
        raise AuditagentError(
            f"{args.id!r} is not a key id", fix="use an id from `auditagent apikey list`"
        ) from None
    engine = db.make_engine(settings)
    try:
        db.ensure_schema_current(engine)
        p = principal_store.revoke_principal(engine, key_id)
    finally:
        engine.dispose()
    print(f"revoked key {p.id} ({p.name})")
    return 0
