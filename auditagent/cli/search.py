"""`auditagent search reindex [--tenant T]`: rebuild the search index from the sealed records."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ..settings import Settings

LOG_NAME = "search-reindex.log"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("search", help="the search index over encrypted transcripts")
    ssub = p.add_subparsers(dest="search_command", metavar="ACTION", required=True)
    rebuild = ssub.add_parser(
        "reindex",
        help="index every session not yet indexed under the current key (resumes where an "
        "interrupted run stopped)",
    )
    rebuild.add_argument("--tenant", help="only this tenant's sessions")
    rebuild.add_argument("--quiet", action="store_true", help="no progress lines")
    rebuild.set_defaults(func=_reindex)


def _reindex(args: argparse.Namespace, settings: Settings) -> int:
    from ..keys import load_key_provider
    from ..search.reindex import reindex
    from ._common import engine_for

    kp = load_key_provider(settings)
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if args.quiet:
            return
        line = f"reindexed {done}/{total} sessions"
        if tty:
            print(f"\r{line}", end="" if done < total else "\n", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    # Deleting a session's old rows is the owner's (AUDITAGENT_RETENTION_DATABASE_URL).
    with engine_for(settings) as engine:
        result = reindex(engine, kp, tenant=args.tenant, progress=progress)
    print(
        f"search index: {result.indexed} sessions indexed under {result.key_id}"
        + (f" (tenant {args.tenant})" if args.tenant else "")
    )
    if result.failed:
        print(
            f"auditagent: {len(result.failed)} sessions could not be opened with this keyring"
            f" (first: {result.failed[0]}); they stay unsearchable until it can",
            file=sys.stderr,
        )
        return 1
    return 0


def start_background_reindex(settings: Settings) -> tuple[int, Path]:
    """Start `auditagent search reindex` detached from this process; ``(pid, log path)``.

    It outlives the command that started it, and being resumable, an interrupted one is
    finished by running `auditagent search reindex` again."""
    log_path = settings.data_dir / LOG_NAME
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "auditagent.cli", "search", "reindex"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=os.environ.copy(),
        )
    return proc.pid, log_path
