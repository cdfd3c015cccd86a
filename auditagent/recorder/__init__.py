"""The recorder: queue, writer, spool — from a LiveKit session's events to stored envelopes.

``AuditRecorder`` (recorder.py) attaches to sessions and hands each a ``SessionRecording``
(handle.py). Raw events go through intake.py onto one queue; the writer (writer.py) seals and
chains them per session (sealing.py) into batches (batch.py), written by ingest.py over
database.py, or to the spool (spool.py) and replayed from it (recovery.py).
"""

from __future__ import annotations

from .handle import SessionRecording
from .recorder import AuditRecorder, record_session

__all__ = ["AuditRecorder", "SessionRecording", "record_session"]
