"""`auditagent retention report`: deletion records and runs with their basis and verification,
and the signed certificate (`--bundle`, checked offline with `--check`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import retention
from ..errors import AuditagentError
from ..settings import Settings
from ._common import (
    add_operator,
    engine_for,
    log_action,
    operator,
    parse_time,
)


def register(rsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from ..integrity import deletion_report
    from ..integrity.checkpoints import load_public_key
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
        check = deletion_report.check_certificate(doc, key)
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
        report = deletion_report.deletion_report(
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
        doc = deletion_report.certificate(report, retention.signer_for(keys), generated_by=op.name)
        args.bundle.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        print(f"certificate written to {args.bundle}")
    return 0 if report.ok else 1
