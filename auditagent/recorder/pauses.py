"""Pause rules: stop recording while a named agent (or AgentTask) is active or a named tool
runs, for at most ``max_duration`` seconds.

``attach(session, ..., pause_rules=[PauseRule(agent="GetCreditCardTask", max_duration=120)])``.
The rules run on the voice loop, inside the recorder's hook (``SessionIntake.put``): each
event costs an identity check or a dict lookup, nothing more. Whether a rule applies is decided
from the event itself: the agent LiveKit pinned on a conversation item (an ``AgentHandoff``
item is added whenever an agent or task takes over, and again when it hands back) and the
tool lifecycle events (``tool_call_started`` / ``tool_call_ended``).

A pause by rule is recorded like a manual one (``recording_paused`` / ``recording_resumed``
notices) with the rule in its details; when ``max_duration`` passes, recording resumes and the
notice says so (``max_duration_reached``). As with a secure pause in a contact centre, the same
agent activation or tool call cannot start it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import AuditagentError

if TYPE_CHECKING:
    from ..livekit import RawEvent
    from .handle import SessionRecording

DEFAULT_MAX_DURATION_S = 300.0


@dataclass(frozen=True)
class PauseRule:
    """Pause while ``agent`` (class name or id of an Agent or AgentTask) is active, or while
    the function tool named ``tool`` runs; resume after ``max_duration`` seconds at most."""

    agent: str | None = None
    tool: str | None = None
    max_duration: float = DEFAULT_MAX_DURATION_S
    reason: str | None = None
    """The ``recording_paused`` notice's message (default: names the rule)."""

    def __post_init__(self) -> None:
        if (self.agent is None) == (self.tool is None):
            raise AuditagentError(
                "a pause rule names exactly one agent or one tool",
                fix="use PauseRule(agent='GetCreditCardTask') or PauseRule(tool='charge_card')",
            )
        if not self.max_duration > 0:
            raise AuditagentError(
                f"a pause rule's max_duration must be positive (got {self.max_duration})",
                fix="pass max_duration=120 (seconds), or leave the default of 300",
            )

    @property
    def label(self) -> str:
        return f"agent {self.agent}" if self.agent is not None else f"tool {self.tool}"

    @property
    def message(self) -> str:
        return self.reason or f"paused while {self.label} is active"


class PauseRules:
    """The rules of one recorded session, applied event by event on the voice loop."""

    def __init__(self, rules: Iterable[PauseRule], rec: SessionRecording) -> None:
        self.rec = rec
        self.by_agent = {r.agent: r for r in rules if r.agent is not None}
        self.by_tool = {r.tool: r for r in rules if r.tool is not None}
        self.active: PauseRule | None = None
        self.deadline = 0.0
        self._agent: Any = None  # the agent object the last conversation item was pinned to
        self._subject: Any = None  # what the active pause is about: an agent or a call id
        self._spent: Any = None  # a subject whose pause ran out: not paused again
        self._timer: asyncio.TimerHandle | None = None

    def before(self, raw: RawEvent) -> None:
        """Resume if the rule's agent or tool has ended, or its time ran out."""
        active = self.active
        if active is None:
            return
        name, ev, t = raw
        if t >= self.deadline:
            self._end(t, expired=True)
        elif active.tool is not None:
            if name == "tool_execution_updated":
                u = ev.update
                if u.type == "tool_call_ended" and u.call_id == self._subject:
                    self._end(t, expired=False)
        elif name == "conversation_item_added" and ev[3] is not self._subject:
            self._end(t, expired=False)

    def after(self, raw: RawEvent) -> None:
        """Pause if this (queued) event starts a rule's agent or tool."""
        name, ev, t = raw
        if name == "conversation_item_added":
            agent = ev[3]
            if agent is self._agent:
                return
            self._agent = agent
            if self.by_agent and self.active is None and agent is not None:
                rule = self.by_agent.get(type(agent).__name__) or self.by_agent.get(
                    str(getattr(agent, "id", ""))
                )
                if rule is not None and agent is not self._spent:
                    self._start(rule, agent, t)
        elif name == "tool_execution_updated" and self.by_tool and self.active is None:
            u = ev.update
            if u.type == "tool_call_started":
                rule = self.by_tool.get(u.function_call.name)
                if rule is not None and u.function_call.call_id != self._spent:
                    self._start(rule, u.function_call.call_id, t)

    def _start(self, rule: PauseRule, subject: Any, t: float) -> None:
        if self.rec.is_paused:
            return  # a manual pause owns the recording
        self.active, self._subject, self.deadline = rule, subject, t + rule.max_duration
        self.rec._pause(
            t,
            rule.message,
            {"rule": rule.label, "max_duration_s": rule.max_duration},
        )
        try:
            self._timer = asyncio.get_running_loop().call_later(rule.max_duration, self._expire)
        except RuntimeError:
            self._timer = None  # no loop (a test driving the hook by hand): events check it

    def _expire(self) -> None:
        try:
            if self.active is not None:
                self._end(time.time(), expired=True)
        except Exception:
            pass

    def _end(self, t: float, *, expired: bool) -> None:
        rule = self.active
        if rule is None:
            return
        if expired:
            self._spent = self._subject
        self.active, self._subject = None, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.rec._resume(t, {"rule": rule.label, "max_duration_reached": expired})

    def drop(self) -> None:
        """A manual pause or resume takes over: the rule's pause is no longer tracked."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.active, self._subject = None, None
