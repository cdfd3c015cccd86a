"""SessionRecording: the handle a user holds for one recorded conversation."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .. import records
from . import clock

if TYPE_CHECKING:
    from ..audio.session import SessionAudio
    from ..livekit import SessionCapture
    from .sealing import SessionSealing


class SessionRecording:
    """One recorded conversation. ``session_id`` is the UUID the review API uses.

    Made by ``AuditRecorder.attach`` / ``open_session``; all it does is hand records and
    pauses to the recorder, which seals and stores them.
    """

    def __init__(self, state: SessionSealing) -> None:
        self._state = state
        self._intake = state.intake

    @property
    def session_id(self) -> uuid.UUID:
        return self._state.session_id

    @property
    def tenant(self) -> str:
        return self._state.tenant

    @property
    def labels(self) -> dict[str, str]:
        return self._state.labels

    @property
    def key_id(self) -> str:
        """The id of the session's data key (its wrapped copy is stored with the session)."""
        return self._state.key_id

    @property
    def capture(self) -> SessionCapture | None:
        """The LiveKit capture of an attached session (None for ``open_session``)."""
        return self._state.capture

    @property
    def audio(self) -> SessionAudio | None:
        """The call audio's recording, when the session's audio is recorded (issue 15)."""
        return self._intake.audio

    @property
    def closed(self) -> bool:
        """Whether the session's ``closed`` record has been sealed."""
        return self._state.closed

    def add(self, record: records.Record) -> None:
        """Queue a record built by the caller (non-LiveKit sources, consent notices, tests)."""
        self._intake.add(record)

    def pause(self, *, reason: str) -> None:
        """Stop recording what is said until :meth:`resume` — e.g. while a caller reads out a
        card number or CVV, which PCI DSS 3.3.1 forbids keeping even encrypted.

        The pause itself is recorded (a ``recording_paused`` notice with the reason), events
        carrying content are counted instead of queued, items LiveKit keeps in its history for
        that time are left out of the close-time reconciliation, and :meth:`resume` records how
        many events were not recorded. Timing, state and usage events are still recorded.
        """
        if self._intake.paused:
            return
        t = time.time()
        self.add(
            records.Notice(
                at=datetime.fromtimestamp(t, timezone.utc),
                code="recording_paused",
                message=reason,
            )
        )
        self._intake.pause(t)
        capture = self._state.capture
        if capture is not None:
            capture.pause_at(t)
        if self._intake.audio is not None:
            self._intake.audio.pause(t)  # silence of the same length in the recording

    def resume(self) -> None:
        """Record again after :meth:`pause`."""
        if not self._intake.paused:
            return
        t = time.time()
        capture = self._state.capture
        if capture is not None:
            capture.resume_at(t)
        if self._intake.audio is not None:
            self._intake.audio.resume(t)
        self.add(self._intake.resumed_notice(t))

    @property
    def paused(self) -> bool:
        return self._intake.paused

    def close(self, *, reason: str = "closed", error: str | None = None) -> None:
        """Close a session opened with ``open_session`` (attached sessions close themselves).

        A session has one ``closed`` record, its last: a second close adds nothing.
        """
        self.add(records.Closed(at=clock.utcnow(), reason=reason, error=error))
