"""`auditagent checkpoint write | verify`.

`write` signs a global checkpoint over every session head, the deletion-record chain and the
retention change log into the checkpoint directory (retention runs and erasures write one
when they finish; run it from cron too); `verify` holds the database to every checkpoint found
there and checks retention's signed proof (also available as
`auditagent verify --all --checkpoints DIR`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..integrity import checkpoints
from ..keys import load_key_provider
from ..settings import Settings
from ._common import engine_for


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("checkpoint", help="signed checkpoints outside the database")
    csub = p.add_subparsers(dest="checkpoint_command", metavar="ACTION", required=True)
    w = csub.add_parser("write", help="sign a global checkpoint of every session and deletion")
    w.add_argument("--dir", type=Path, help="sink directory (default: AUDITAGENT_CHECKPOINT_DIR)")
    w.set_defaults(func=_write)
    v = csub.add_parser("verify", help="check the database against the checkpoints")
    v.add_argument("--dir", type=Path, help="checkpoint directory (default: the configured one)")
    v.add_argument(
        "--public-key",
        help="base64 Ed25519 key (or a file with it) from `auditagent keys public`; "
        "default: the keyring's",
    )
    v.set_defaults(func=_verify)


def _write(args: argparse.Namespace, settings: Settings) -> int:
    sink = checkpoints.DirectorySink(args.dir or settings.resolved_checkpoint_dir)
    with engine_for(settings) as engine:
        where, cp = checkpoints.write_global_checkpoint(engine, load_key_provider(settings), sink)
    print(f"checkpoint {where}: {cp.size} sessions, {cp.extensions[0]}")
    return 0


def run_verify(settings: Settings, directory: Path | None, public_key: str | None) -> int:
    """Shared by `checkpoint verify` and `verify --all --checkpoints DIR`."""
    key = checkpoints.load_public_key(public_key, lambda: load_key_provider(settings))
    sink = checkpoints.DirectorySink(directory or settings.resolved_checkpoint_dir)
    with engine_for(settings) as engine:
        report = checkpoints.verify_checkpoints(
            engine, sink, public_key=key, floor=settings.retention_floor
        )
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    return run_verify(settings, args.dir, args.public_key)
