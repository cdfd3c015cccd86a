"""Moved to :mod:`auditagent.integrity` (``signed_logs``, ``deletion_basis``,
``deletion_report``); an alias until every import is repointed."""

from __future__ import annotations

from auditagent.integrity.deletion_basis import (
    RetentionVerifyReport,
    basis_problems,
    record_problems,
    verify_retention,
)
from auditagent.integrity.deletion_report import (
    CERTIFICATE_FORMAT,
    CERTIFICATE_VERSION,
    CertificateCheck,
    DeletionEntry,
    DeletionReport,
    certificate,
    check_certificate,
    deletion_report,
    record_json,
    report_json,
    run_json,
)
from auditagent.integrity.signed_logs import (
    ChangeLogResult,
    DeletionChainResult,
    check_deletion_chain,
    verify_changes,
    verify_deletion_chain,
)

__all__ = [
    "CERTIFICATE_FORMAT",
    "CERTIFICATE_VERSION",
    "CertificateCheck",
    "ChangeLogResult",
    "DeletionChainResult",
    "DeletionEntry",
    "DeletionReport",
    "RetentionVerifyReport",
    "basis_problems",
    "certificate",
    "check_certificate",
    "check_deletion_chain",
    "deletion_report",
    "record_json",
    "record_problems",
    "report_json",
    "run_json",
    "verify_changes",
    "verify_deletion_chain",
    "verify_retention",
]
