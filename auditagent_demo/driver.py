"""Drives a seed system's conversation: waits on the session's state (evented, with a
deadline) and speaks each user line at its moment, the barge-in over the agent's long reply."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from livekit.agents import AgentSession
from livekit.agents import llm as lk_llm

from . import script
from .audio_io import ScenarioMic

# Seconds of the long reply the user hears before talking over it. Gemini's simulator only
# honours a barge-in while it is still sending audio (pace x faster than real time), so this
# must stay well below len(reply) * AGENT_SECONDS_PER_CHAR / pace.
BARGE_IN_AFTER_S = 1.2
# Pause the user leaves after the agent finishes before speaking the next line.
USER_GAP_S = 0.3
# Longest a single conversational step (a reply, a state change) may take.
STEP_TIMEOUT_S = 20.0


class SeedSystemError(RuntimeError):
    """A seed system did not play its scenario (timeout, session error, early close)."""


class Watch:
    """Session state the driver waits on, fed by (sync, constant-time) event handlers."""

    def __init__(self, name: str, session: AgentSession[None]) -> None:
        self.name = name
        self.session = session
        self.assistant: list[lk_llm.ChatMessage] = []
        self.user: list[lk_llm.ChatMessage] = []
        self.errors: list[str] = []
        self.closed: str | None = None
        self._changed = asyncio.Event()
        session.on("conversation_item_added", self._on_item)
        session.on("agent_state_changed", self._on_change)
        session.on("user_state_changed", self._on_change)
        session.on("error", self._on_error)
        session.on("close", self._on_close)

    def _on_item(self, ev: Any) -> None:
        item = ev.item
        if isinstance(item, lk_llm.ChatMessage):
            (self.assistant if item.role == "assistant" else self.user).append(item)
        self._changed.set()

    def _on_change(self, ev: Any) -> None:
        self._changed.set()

    def _on_error(self, ev: Any) -> None:
        err = getattr(ev, "error", None)
        recoverable = getattr(err, "recoverable", None)
        self.errors.append(f"{type(err).__name__} (recoverable={recoverable})")
        self._changed.set()

    def _on_close(self, ev: Any) -> None:
        self.closed = str(getattr(ev, "reason", "closed"))
        self._changed.set()

    @property
    def state(self) -> str:
        return str(self.session.agent_state)

    def describe(self) -> str:
        return (
            f"agent_state={self.state}, assistant messages={len(self.assistant)}, "
            f"user messages={len(self.user)}, errors={self.errors or 'none'}"
        )

    async def until(self, pred: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            if pred():
                return
            if self.closed is not None:
                raise SeedSystemError(
                    f"{self.name}: session closed ({self.closed}) while waiting for {what}; "
                    f"{self.describe()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SeedSystemError(
                    f"{self.name}: timed out after {timeout:.0f}s waiting for {what}; "
                    f"{self.describe()}"
                )
            # state changes are evented; the short cap also re-checks conditions that are not
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))


async def play(watch: Watch, mic: ScenarioMic, scenario: script.Scenario, *, speed: float) -> None:
    """Speak every user line at its moment; the barge-in line over the agent's long reply."""
    lines = [t for t in scenario.turns if isinstance(t, script.UserLine)]

    def replies(idx: int | None) -> int:
        return sum(1 for s in scenario.steps_after(idx) if isinstance(s, script.AgentReply))

    expected = replies(None)

    def settled() -> bool:
        return len(watch.assistant) >= expected and watch.state == "listening"

    await watch.until(settled, "the greeting", STEP_TIMEOUT_S)
    for i, line in enumerate(lines):
        if not line.barge_in:
            await watch.until(settled, f"the reply before user line {i}", STEP_TIMEOUT_S)
            await asyncio.sleep(USER_GAP_S / speed)
        if line.barge_in and watch.state != "speaking":
            raise SeedSystemError(
                f"{watch.name}: the agent stopped speaking before the barge-in; {watch.describe()}"
            )
        spoken = mic.say(line.text)
        seconds = script.speech_seconds(line.text) / speed
        try:
            await asyncio.wait_for(spoken, seconds + 5.0)
        except asyncio.TimeoutError:
            raise SeedSystemError(f"{watch.name}: the microphone stalled on line {i}") from None
        expected += replies(i)
        if i + 1 < len(lines) and lines[i + 1].barge_in:
            # the reply to this line is the long one the next line talks over
            await watch.until(
                lambda: watch.state == "speaking", f"the agent to answer line {i}", STEP_TIMEOUT_S
            )
            await asyncio.sleep(BARGE_IN_AFTER_S / speed)
    await watch.until(settled, "the last reply", STEP_TIMEOUT_S)
