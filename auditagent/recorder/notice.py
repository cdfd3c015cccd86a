"""The recording notice: the agent says it first, the record proves it was heard.

``attach(session, ..., notice="This call is recorded ...")`` starts a task that, once the session
runs, has the agent say the text (``session.say``, not interruptible) and seals a
``recording_notice`` record with the text's SHA-256 and when its playout started and ended. If
the caller spoke over it, it is said again (``MAX_ATTEMPTS`` in all), each time recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..livekit import _compat as lk
from ..records import RecordingNotice

if TYPE_CHECKING:
    from .handle import SessionRecording

log = logging.getLogger("auditagent.notice")

MAX_ATTEMPTS = 3
START_WAIT_S = 30.0
"""How long the task waits for the session to start before it records that it could not."""


def _dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc)


def start_notice(rec: SessionRecording, session: Any, text: str) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(
        _say_notice(rec, session, text), name="auditagent-notice"
    )


async def _say_notice(rec: SessionRecording, session: Any, text: str) -> None:
    digest = hashlib.sha256(text.encode()).hexdigest()
    deadline = time.monotonic() + START_WAIT_S
    while not lk.session_can_speak(session):
        if time.monotonic() > deadline or rec.closed:
            _failed(rec, digest, 1, "the session did not start")
            return
        await asyncio.sleep(0.02)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            done = await _say_once(rec, session, text, digest, attempt)
        except Exception as exc:  # never into LiveKit, never the text in a log
            log.warning("recording notice could not be said: %s", type(exc).__name__)
            _failed(rec, digest, attempt, type(exc).__name__)
            return
        if done:
            return


async def _say_once(
    rec: SessionRecording, session: Any, text: str, digest: str, attempt: int
) -> bool:
    state: dict[str, Any] = {"spoken_over": False, "started": None}

    def on_user(ev: Any) -> None:
        if getattr(ev, "new_state", None) == "speaking":
            state["spoken_over"] = True

    def on_agent(ev: Any) -> None:
        if getattr(ev, "new_state", None) == "speaking" and state["started"] is None:
            state["started"] = time.time()

    session.on("user_state_changed", on_user)
    session.on("agent_state_changed", on_agent)
    try:
        if getattr(session, "user_state", None) == "speaking":
            state["spoken_over"] = True
        handle = session.say(text, allow_interruptions=False)
        await handle.wait_for_playout()
    finally:
        session.off("user_state_changed", on_user)
        session.off("agent_state_changed", on_agent)
    ended = time.time()
    completed = not handle.interrupted and not state["spoken_over"]
    rec.add(
        RecordingNotice(
            at=datetime.fromtimestamp(ended, timezone.utc),
            text_sha256=digest,
            started_at=_dt(state["started"]),
            ended_at=_dt(ended),
            completed=completed,
            attempt=attempt,
            spoken_over=state["spoken_over"],
            interrupted=bool(handle.interrupted),
        )
    )
    return completed


def _failed(rec: SessionRecording, digest: str, attempt: int, error: str) -> None:
    rec.add(
        RecordingNotice(
            at=datetime.now(timezone.utc),
            text_sha256=digest,
            completed=False,
            attempt=attempt,
            error=error,
        )
    )
