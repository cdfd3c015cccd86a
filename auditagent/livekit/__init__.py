"""The LiveKit side of the recorder: hooks on an AgentSession, and events turned into records.

The only package that knows LiveKit's event shapes (livekit-agents 1.8.x); private LiveKit
attributes are read only in :mod:`auditagent.livekit._compat`.
"""

from __future__ import annotations

from .capture import SessionCapture
from .hooks import EVENTS, RawEvent

__all__ = ["EVENTS", "RawEvent", "SessionCapture"]
