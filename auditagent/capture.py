"""Moved to :mod:`auditagent.livekit` (issue 11); this alias keeps old imports working."""

from __future__ import annotations

from .livekit.capture import SessionCapture
from .livekit.hooks import EVENTS, RawEvent
from .livekit.tap import GeneratedTextTap
from .livekit.transcription import DEFAULT_TRANSCRIPTION_MODEL

__all__ = [
    "DEFAULT_TRANSCRIPTION_MODEL",
    "EVENTS",
    "GeneratedTextTap",
    "RawEvent",
    "SessionCapture",
]
