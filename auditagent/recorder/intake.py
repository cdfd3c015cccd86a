"""The voice loop's side of the recorder: a raw event into the writer's queue, O(1).

Nothing here does I/O or raises into LiveKit. The queue is bounded: past ``queue_size`` an
event is counted, not queued, and the writer seals the count as a ``gap`` record. While a
session is paused, events carrying content are counted instead of queued.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import records
from ..livekit import RawEvent

if TYPE_CHECKING:
    from ..audio.session import SessionAudio
    from ..audio.worker import ChunkReady
    from .pauses import PauseRules

# Events with no conversation content, still recorded while a session is paused.
_KEPT_WHILE_PAUSED = frozenset(
    {
        "__record__",
        "close",
        "agent_state_changed",
        "user_state_changed",
        "metrics_collected",
        "session_usage_updated",
    }
)

QueueItem = tuple[Any, RawEvent]
"""(the session's sealing state, raw event): what the writer takes off the queue."""


class Inbox:
    """The queue between the voice loop and the writer, and how to wake the writer."""

    __slots__ = ("maxlen", "queue", "wake", "wake_at")

    def __init__(self, *, maxlen: int, wake_at: int, wake: Callable[[], None]) -> None:
        self.queue: deque[QueueItem] = deque()
        self.maxlen = maxlen
        self.wake_at = wake_at
        self.wake = wake


class Overflow(NamedTuple):
    lost: int
    first: float | None
    last: float | None


class SessionIntake:
    """One session's way into the queue; ``owner`` is what the writer gets with each event."""

    __slots__ = (
        "_inbox",
        "_maxlen",
        "_overflow",
        "_overflow_first",
        "_overflow_last",
        "_owner",
        "_q",
        "_wake_at",
        "audio",
        "dropped_while_paused",
        "failed_since",
        "lost",
        "pause_details",
        "paused",
        "paused_since",
        "rules",
    )

    def __init__(self, inbox: Inbox, owner: Any) -> None:
        self._inbox = inbox
        self._q = inbox.queue
        self._maxlen = inbox.maxlen
        self._wake_at = inbox.wake_at
        self._owner = owner
        # overflow bookkeeping, touched by the hot path only when the queue is full
        self._overflow = 0
        self._overflow_first: float | None = None
        self._overflow_last: float | None = None
        self.paused = False
        self.paused_since: float | None = None
        self.dropped_while_paused = 0
        self.audio: SessionAudio | None = None
        self.pause_details: dict[str, Any] = {}
        self.rules: PauseRules | None = None  # pause rules given at attach
        # set when the session's records could be kept nowhere (require_recording)
        self.failed_since: float | None = None
        self.lost = 0

    @property
    def queue_bound(self) -> int:
        return self._maxlen

    def put(self, raw: RawEvent) -> None:
        """Called by capture handlers on the voice loop: O(1), no I/O, never raises."""
        if self.failed_since is not None:
            self.lost += 1  # recording failed (require_recording): nothing more is kept
            return
        rules = self.rules
        if rules is not None:
            rules.before(raw)  # a rule's agent or tool ended, or its time ran out: resume
        if self.paused and raw[0] not in _KEPT_WHILE_PAUSED:
            self.dropped_while_paused += 1
            return
        if raw[0] == "close" and (audio := self.audio) is not None and audio.active:
            # LiveKit's close goes into the chain after the call audio's last chunks
            audio.close_then(lambda: self.put(raw))
            return
        q = self._q
        if len(q) < self._maxlen:
            q.append((self._owner, raw))
            if len(q) >= self._wake_at:
                self._inbox.wake()
            if rules is not None:
                rules.after(raw)  # this event starts a rule's agent or tool: pause after it
        else:
            self._overflow += 1
            if self._overflow_first is None:
                self._overflow_first = raw[2]
            self._overflow_last = raw[2]

    def add(self, record: records.Record) -> None:
        self.put(("__record__", record, time.time()))

    def deliver_audio(self, ready: ChunkReady) -> None:
        """A sealed chunk of call audio from the audio worker. Past the queue bound and a
        pause: a chunk (silence while paused) is never dropped, or the recording would have a
        hole its records cannot account for."""
        self._q.append((self._owner, ("__audio__", ready, time.time())))
        self._inbox.wake()

    def end(self) -> None:
        """Queue the session's end as the recorder closes. Past the queue bound and a pause:
        a session must get its ``closed`` record whatever else was dropped."""
        self._q.append((self._owner, ("__close__", None, time.time())))

    def pause(self, t: float, details: dict[str, Any] | None = None) -> None:
        self.paused, self.paused_since, self.dropped_while_paused = True, t, 0
        self.pause_details = details or {}

    def resumed_notice(self, t: float, details: dict[str, Any] | None = None) -> records.Notice:
        """Recording again (or closed while paused): how much was left out, and the rule
        that paused it (with whether its maximum duration was reached)."""
        self.paused = False
        since = self.paused_since or t
        dropped = self.dropped_while_paused
        extra = {k: v for k, v in self.pause_details.items() if k == "rule"}
        extra.update(details or {})
        expired = extra.get("max_duration_reached") is True
        return records.Notice(
            at=datetime.fromtimestamp(t, timezone.utc),
            code="recording_resumed",
            message=f"{dropped} events were not recorded while paused"
            + (" (the rule's maximum duration was reached)" if expired else ""),
            details={"events_not_recorded": dropped, "paused_seconds": t - since, **extra},
        )

    def take_overflow(self) -> Overflow | None:
        """Events not queued (queue full) since the last call; the writer seals them as a gap."""
        if not self._overflow:
            return None
        out = Overflow(self._overflow, self._overflow_first, self._overflow_last)
        self._overflow, self._overflow_first, self._overflow_last = 0, None, None
        return out
