"""`/v1/deletions`: what was deleted, why, and whether the proof holds — for examiners.

Deletion records (each with its basis: end time, policy version, floor, hold check, real
deletion time) and the runs they came from, every record checked (hash, Ed25519 signature,
basis) and both chains' state; `/v1/deletions/certificate` is the same as a bundle signed with
the checkpoint key, which `auditagent retention report --check FILE` verifies offline.
Admins see every tenant (or theirs); auditors their own tenant. Access-logged like every read.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from auditagent.integrity import deletion_report
from auditagent.retention import signer_for

from ..deps import AccessDep, KeysDep, scope_tenant
from ..problems import problem_responses
from ..schemas import SAFE_TEXT, ChainState, DeletionList, IsoDatetime, RunSummary
from .erased import deletion_out

router = APIRouter(prefix="/v1/deletions", tags=["deletions"])


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


Tenant = Annotated[str | None, Query(min_length=1, max_length=128, pattern=SAFE_TEXT)]
From = Annotated[IsoDatetime | None, Query(alias="from", description="deleted_at >= from")]
To = Annotated[IsoDatetime | None, Query(alias="to", description="deleted_at < to")]


def _report(
    access: AccessDep,
    keys: KeysDep,
    action: str,
    tenant: str | None,
    start: datetime | None,
    end: datetime | None,
    after_seq: int | None,
    limit: int | None,
) -> tuple[deletion_report.DeletionReport, str | None]:
    scope = scope_tenant(access.principal, tenant)
    access.record(
        action,
        tenant=scope,
        detail={
            "from": start.isoformat() if start else None,
            "to": end.isoformat() if end else None,
        },
    )
    report = deletion_report.deletion_report(
        access.engine,
        public_key=keys.signing_public_key(),
        tenant=scope,
        start=_utc(start),
        end=_utc(end),
        after_seq=after_seq,
        limit=limit,
    )
    return report, scope


def _change_log(report: deletion_report.DeletionReport, *, detailed: bool) -> ChainState:
    # The problems name other tenants' policies and holds: only a tenantless admin sees them.
    return ChainState(
        ok=report.changes.ok,
        count=report.changes.count,
        head=report.changes.head.hex(),
        problems=report.changes.problems if detailed else [],
    )


@router.get("", response_model=DeletionList, responses=problem_responses(401, 403, 422, 503))
def list_deletions(
    access: AccessDep,
    keys: KeysDep,
    tenant: Tenant = None,
    start: From = None,
    end: To = None,
    after_seq: Annotated[int | None, Query(ge=-1)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> DeletionList:
    """Deletion records, oldest first, with their basis and whether each verifies, and the
    runs they came from."""
    report, scope = _report(access, keys, "deletions.list", tenant, start, end, after_seq, limit)
    items = [deletion_out(e.record, e.problems) for e in report.entries]
    return DeletionList(
        items=items,
        runs=[RunSummary(**deletion_report.run_json(r)) for r in report.runs],
        deletion_chain=ChainState(
            ok=report.chain.ok,
            count=report.chain.count,
            head=report.chain.head.hex(),
            first_bad_seq=report.chain.first_bad_seq,
            reason=report.chain.reason,
        ),
        change_log=_change_log(report, detailed=scope is None),
        valid=report.ok,
        next_after_seq=items[-1].seq if len(items) == limit else None,
    )


@router.get(
    "/certificate",
    responses={
        200: {
            "description": "The deletion report as a bundle signed with the checkpoint key "
            f"(format `{deletion_report.CERTIFICATE_FORMAT}`)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **problem_responses(401, 403, 422, 503),
    },
)
def deletion_certificate(
    access: AccessDep,
    keys: KeysDep,
    tenant: Tenant = None,
    start: From = None,
    end: To = None,
) -> JSONResponse:
    """The certificate an examiner asks for: every deletion in the window with its basis and
    verification, the runs, both chains' state, signed (Ed25519) as one bundle. Check it
    offline with `auditagent retention report --check FILE --public-key KEY`."""
    report, scope = _report(access, keys, "deletions.certificate", tenant, start, end, None, None)
    doc: dict[str, Any] = deletion_report.certificate(
        report,
        signer_for(keys),
        generated_by=access.principal.name,
        change_log_problems=scope is None,
    )
    # Only plain characters in a header: a tenant name may be any text.
    label = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in scope or "all"
    )
    name = f"auditagent-deletions-{label[:64]}.json"
    return JSONResponse(doc, headers={"Content-Disposition": f'attachment; filename="{name}"'})
