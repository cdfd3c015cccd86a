"""The AgentSession event handlers: the only auditagent code LiveKit's voice loop runs.

Each handler is a ``_Hook`` instance. LiveKit's ``EventEmitter.emit`` calls
``inspect.signature`` on every handler for every event; a plain function or bound method costs
~7 µs there, so ``_Hook`` carries a precomputed ``__signature__`` which ``inspect`` returns at once.
The handler only builds ``(name, event, time.time())`` and calls ``put``; it swallows every
``Exception`` so nothing it does can disturb the voice loop. Synchronous, constant-time, no I/O.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

from . import _compat as lk

logger = logging.getLogger("auditagent.capture")

RawEvent = tuple[str, Any, float]
"""(event name, event object, time.time()) — for conversation_item_added the event object is
``(event, audio_output, transcription_output, current_agent)`` so translate sees the output
chain and the agent of that moment."""

EVENTS: tuple[str, ...] = (
    "conversation_item_added",
    "user_input_transcribed",
    "function_tools_executed",
    "tool_execution_updated",
    "metrics_collected",
    "session_usage_updated",
    "agent_state_changed",
    "user_state_changed",
    "speech_created",
    "error",
    "close",
    "user_transcription_timeout",
    "agent_false_interruption",
    "overlapping_speech",
)

# ``ev`` is positional-or-keyword: LiveKit counts positional params to decide what to pass.
_HOOK_SIGNATURE = inspect.Signature(
    [inspect.Parameter("ev", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
)


class _Hook:
    """One event handler: constant work, never raises."""

    __slots__ = ("name", "put")
    __signature__ = _HOOK_SIGNATURE

    def __init__(self, name: str, put: Callable[[RawEvent], None]) -> None:
        self.name = name
        self.put = put

    def __call__(self, ev: Any) -> None:
        # try/except, not contextlib.suppress: a context manager costs more than the work itself
        try:  # noqa: SIM105
            self.put((self.name, ev, time.time()))
        except Exception:  # the voice loop must never see our failures
            pass


class _StateHook(_Hook):
    """agent_state_changed: on the first one (outputs are wired by then, no speech yet), run
    ``first`` (which puts the generated-text tap at the head of the transcription chain)."""

    __slots__ = ("first",)

    def __init__(
        self, name: str, put: Callable[[RawEvent], None], first: Callable[[], None]
    ) -> None:
        super().__init__(name, put)
        self.first: Callable[[], None] | None = first

    def __call__(self, ev: Any) -> None:
        # each step on its own: a tap that cannot be put in must not cost the event
        try:
            first = self.first
            if first is not None:
                self.first = None
                first()
        except Exception:
            pass
        try:  # noqa: SIM105
            self.put((self.name, ev, time.time()))
        except Exception:
            pass


class _ItemHook(_Hook):
    """conversation_item_added: also pin the output chain and the agent as they are now."""

    __slots__ = ("session",)

    def __init__(self, name: str, put: Callable[[RawEvent], None], session: Any) -> None:
        super().__init__(name, put)
        self.session = session

    def __call__(self, ev: Any) -> None:
        try:
            s = self.session
            out = s.output
            agent = lk.current_agent(s)
            self.put((self.name, (ev, out.audio, out.transcription, agent), time.time()))
        except Exception:
            pass


class _CloseHook(_Hook):
    """close: also tell the capture at once (the recorder may be waiting for it at job
    shutdown); noted apart from the queue, so a close event that could not be queued (queue
    full) still gives the session its LiveKit close reason."""

    __slots__ = ("note",)

    def __init__(
        self, name: str, put: Callable[[RawEvent], None], note: Callable[[Any], None]
    ) -> None:
        super().__init__(name, put)
        self.note = note

    def __call__(self, ev: Any) -> None:
        # each step on its own: a failed note must not cost the event (no suppress(): as _Hook)
        try:  # noqa: SIM105
            self.note(ev)
        except Exception:
            pass
        try:  # noqa: SIM105
            self.put((self.name, ev, time.time()))
        except Exception:
            pass


def install(
    session: Any,
    *,
    put: Callable[[RawEvent], None],
    first_state: Callable[[], None],
    note_close: Callable[[Any], None],
) -> list[tuple[str, _Hook]]:
    """Subscribe one hook per event in :data:`EVENTS`; returns them for :func:`uninstall`."""
    hooks: list[tuple[str, _Hook]] = []
    for name in EVENTS:
        hook: _Hook
        if name == "conversation_item_added":
            hook = _ItemHook(name, put, session)
        elif name == "agent_state_changed":
            hook = _StateHook(name, put, first_state)
        elif name == "close":
            hook = _CloseHook(name, put, note_close)
        else:
            hook = _Hook(name, put)
        if name == "metrics_collected":
            lk.on_quietly(session, name, hook)
        else:
            session.on(name, hook)
        hooks.append((name, hook))
    return hooks


def uninstall(session: Any, hooks: list[tuple[str, _Hook]]) -> None:
    for name, hook in hooks:
        try:
            session.off(name, hook)
        except Exception:
            logger.debug("could not remove handler for %s", name, exc_info=True)
    hooks.clear()
