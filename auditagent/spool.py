"""Moved to :mod:`auditagent.recorder.spool` (issue 11); this alias keeps old imports working."""

from __future__ import annotations

from .recorder.spool import (
    SUFFIX,
    TAG_ENVELOPE,
    TAG_SESSION,
    TAG_UPDATE,
    FrameReader,
    ReadResult,
    Spool,
    encode_frames,
)

__all__ = [
    "SUFFIX",
    "TAG_ENVELOPE",
    "TAG_SESSION",
    "TAG_UPDATE",
    "FrameReader",
    "ReadResult",
    "Spool",
    "encode_frames",
]
