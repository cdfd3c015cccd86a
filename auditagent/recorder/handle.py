"""SessionRecording: the handle a user holds for one recorded conversation."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

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
        self._notice_task: asyncio.Task[None] | None = None

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
        rules = self._intake.rules
        if rules is not None and rules.active is not None:
            rules.drop()  # a manual pause takes over the pause a rule started
            self._intake.pause_details = {"reason": reason}
            return
        if self._intake.paused:
            return
        self._pause(time.time(), reason, {})

    def resume(self) -> None:
        """Record again after :meth:`pause`."""
        if not self._intake.paused:
            return
        if self._intake.rules is not None:
            self._intake.rules.drop()
        self._resume(time.time(), {})

    @contextlib.contextmanager
    def paused(self, *, reason: str) -> Iterator[SessionRecording]:
        """``with rec.paused(reason="card details"):`` — :meth:`pause`, then :meth:`resume`
        however the block ends (an exception inside it no longer leaves the rest of the call
        unrecorded)."""
        self.pause(reason=reason)
        try:
            yield self
        finally:
            self.resume()

    @property
    def is_paused(self) -> bool:
        return self._intake.paused

    @property
    def recording_failed_since(self) -> float | None:
        """When the records of this session could be kept nowhere (``require_recording``)."""
        return self._intake.failed_since

    def start_notice(self, session: Any, text: str) -> asyncio.Task[None]:
        """Have the agent say the recording notice ``text``; each attempt is sealed."""
        from .notice import start_notice

        self._state.notice = "incomplete"  # until a recording_notice record says otherwise
        self._notice_task = start_notice(self, session, text)
        return self._notice_task

    @property
    def notice_task(self) -> asyncio.Task[None] | None:
        """The task saying the recording notice (``attach(notice=...)``)."""
        return self._notice_task

    def _pause(self, t: float, reason: str, details: dict[str, Any]) -> None:
        self.add(
            records.Notice(
                at=datetime.fromtimestamp(t, timezone.utc),
                code="recording_paused",
                message=reason,
                details=details,
            )
        )
        self._intake.pause(t, details)
        capture = self._state.capture
        if capture is not None:
            capture.pause_at(t)
        if self._intake.audio is not None:
            self._intake.audio.pause(t)  # silence of the same length in the recording

    def _resume(self, t: float, details: dict[str, Any]) -> None:
        capture = self._state.capture
        if capture is not None:
            capture.resume_at(t)
        if self._intake.audio is not None:
            self._intake.audio.resume(t)
        self.add(self._intake.resumed_notice(t, details))

    def close(self, *, reason: str = "closed", error: str | None = None) -> None:
        """Close a session opened with ``open_session`` (attached sessions close themselves).

        A session has one ``closed`` record, its last: a second close adds nothing.
        """
        self.add(records.Closed(at=clock.utcnow(), reason=reason, error=error))
