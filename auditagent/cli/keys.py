"""`auditagent keys init | rotate | public`."""

from __future__ import annotations

import argparse
import base64
import sys

from ..keys import LocalKeyring
from ..settings import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("keys", help="master keyring")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    init = ksub.add_parser("init", help="create the local keyring (refuses to overwrite one)")
    init.set_defaults(func=_init)
    rotate = ksub.add_parser("rotate", help="add a new master key version and make it current")
    rotate.add_argument(
        "--no-reindex",
        action="store_true",
        help="do not start the background search reindex under the new key",
    )
    rotate.set_defaults(func=_rotate)
    public = ksub.add_parser("public", help="print the checkpoint signing public key (base64)")
    public.set_defaults(func=_public)
    rewrap = ksub.add_parser(
        "rewrap", help="move every data key to the newest master key (no ciphertext is touched)"
    )
    rewrap.set_defaults(func=_rewrap)


def _init(args: argparse.Namespace, settings: Settings) -> int:
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    print(f"keyring written to {keyring.path} (master key {keyring.current_key_id()})")
    return 0


def _rotate(args: argparse.Namespace, settings: Settings) -> int:
    keyring = LocalKeyring.load(settings.resolved_keyring_path)
    new_id = keyring.rotate()
    # Existing data keys stay wrapped under older versions until rewrapped; say so, since
    # deleting an old version before then would make those sessions unreadable.
    print(
        f"master key {new_id} is now current in {keyring.path}; "
        "older versions are kept until `auditagent keys rewrap` has run"
    )
    if getattr(args, "no_reindex", False):
        return 0
    if settings.database_url is None:
        # The embedded database may not be running; never start one behind the user's back.
        print("search index: run `auditagent search reindex` to move it to the new key")
        return 0
    from .search import start_background_reindex

    pid, log = start_background_reindex(settings)
    # Searches keep finding sessions under the old key until each is moved.
    print(
        f"search index: reindexing under {new_id} in the background (pid {pid}, log {log}); "
        "if it is interrupted, `auditagent search reindex` resumes it"
    )
    return 0


def _public(args: argparse.Namespace, settings: Settings) -> int:
    keyring = LocalKeyring.load(settings.resolved_keyring_path)
    print(base64.b64encode(keyring.signing_public_key()).decode("ascii"))
    return 0


def _rewrap(args: argparse.Namespace, settings: Settings) -> int:
    from ..keys import load_key_provider
    from ..store import db
    from ..store.keyring import rewrap_all

    kp = load_key_provider(settings)
    engine = db.make_engine(settings)
    try:
        db.ensure_schema_current(engine)
        result = rewrap_all(engine, kp)
    finally:
        engine.dispose()
    print(
        f"rewrapped {result.rewrapped} data keys to {kp.current_key_id()}"
        f" ({result.already_current} already current, {result.shredded} shredded)"
    )
    if result.failed:
        print(
            f"auditagent: {len(result.failed)} data keys could not be unwrapped with this keyring"
            f" (first: session {result.failed[0]}); they were left unchanged",
            file=sys.stderr,
        )
        return 1
    return 0
