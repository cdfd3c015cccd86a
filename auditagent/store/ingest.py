"""Moved to :mod:`auditagent.recorder.ingest` (issue 11); this alias keeps old imports working."""

from __future__ import annotations

from ..recorder.ingest import (
    COPY_HEADER,
    COPY_TRAILER,
    EVENT_COLUMNS,
    EVENT_TYPES,
    SessionOpen,
    SessionUpdate,
    encode_copy_binary,
    encode_copy_rows,
    write_batch,
)

__all__ = [
    "COPY_HEADER",
    "COPY_TRAILER",
    "EVENT_COLUMNS",
    "EVENT_TYPES",
    "SessionOpen",
    "SessionUpdate",
    "encode_copy_binary",
    "encode_copy_rows",
    "write_batch",
]
