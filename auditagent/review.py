"""Moved to :mod:`auditagent.reading`; an alias until every import is repointed."""

from __future__ import annotations

# bench/transcript_shaping_bench.py reads ``review.records``
from auditagent import records
from auditagent.reading.bundle import (
    BUNDLE_CANONICAL,
    BUNDLE_FORMAT,
    BUNDLE_HOW_TO_CHECK,
    BUNDLE_SIGNATURE_ALG,
    BUNDLE_VERSION,
    BundleCheck,
    bundle_parts,
    canonical_json,
    chain_row_json,
    check_bundle,
    json_safe,
    load_bundle,
    sign_bundle,
)
from auditagent.reading.decrypt import (
    DataKeyUnavailable,
    KeyShredded,
    OpenedRecord,
    RecordUnreadable,
    check_newest_data_key,
    open_records,
    read_verified,
    session_sealer,
)
from auditagent.reading.transcript import EntryKind, Timing, TranscriptEntry, transcript_entries

__all__ = [
    "BUNDLE_CANONICAL",
    "BUNDLE_FORMAT",
    "BUNDLE_HOW_TO_CHECK",
    "BUNDLE_SIGNATURE_ALG",
    "BUNDLE_VERSION",
    "BundleCheck",
    "DataKeyUnavailable",
    "EntryKind",
    "KeyShredded",
    "OpenedRecord",
    "RecordUnreadable",
    "Timing",
    "TranscriptEntry",
    "bundle_parts",
    "canonical_json",
    "chain_row_json",
    "check_bundle",
    "check_newest_data_key",
    "json_safe",
    "load_bundle",
    "open_records",
    "read_verified",
    "records",
    "session_sealer",
    "sign_bundle",
    "transcript_entries",
]
