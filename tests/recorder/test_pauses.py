"""Pause rules (by agent/AgentTask, by tool, with a maximum duration) and ``rec.paused()``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from livekit.agents import Agent, AgentSession, AgentTask, RunContext, function_tool

from auditagent import PauseRule
from auditagent import records as r
from auditagent.errors import AuditagentError
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from tests.support.fakes.llm import Reply, ScriptedLLM
from tests.support.helpers import by_kind, read_records, text_values

SECRET = "zanzibarquokka"  # said only while the card task runs


class CardTask(AgentTask[bool]):
    """Stands in for a GetCreditCardTask: the caller's words while it runs are card data."""

    def __init__(self, *, wait: float = 0.0) -> None:
        super().__init__(instructions="Collect the card.")
        self.wait = wait

    async def on_enter(self) -> None:
        if self.wait:
            await asyncio.sleep(self.wait)
        await self.session.generate_reply(user_input=f"my card word is {SECRET}")
        self.complete(True)


class Desk(Agent):
    def __init__(self, *, wait: float = 0.0) -> None:
        super().__init__(instructions="You take payments.")
        self.wait = wait

    @function_tool
    async def collect_card(self, context: RunContext) -> str:
        """Collect the caller's card."""
        ok = await CardTask(wait=self.wait)
        return f"card collected: {ok}"


async def _until(pred: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _call(
    settings: Settings, tenant: str, rules: list[PauseRule], *, wait: float = 0.0
) -> Any:
    llm = ScriptedLLM(
        [
            Reply(tool_calls=[("collect_card", "{}")]),
            Reply(text=f"Card task heard {SECRET}."),
            Reply(text="Payment done."),
        ]
    )
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=llm, vad=None)
        rec = recorder.attach(session, tenant=tenant, pause_rules=rules)
        await session.start(Desk(wait=wait))
        await session.run(user_input="I want to pay")
        await _until(lambda: type(session.current_agent) is Desk, "the desk again")
        await _until(lambda: not rec.is_paused, "the rule to end")
        await session.run(user_input="thanks")
        await session.aclose()
        await recorder.flush()
    return rec


def _notices(got: list[r.Record], code: str) -> list[r.Notice]:
    return [n for n in by_kind(got, "notice") if n.code == code]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "rule",
    [PauseRule(agent="CardTask"), PauseRule(agent="card_task"), PauseRule(tool="collect_card")],
    ids=["agent-class", "agent-id", "tool"],
)
async def test_a_rule_keeps_what_is_said_while_it_holds_out_and_says_so(
    settings: Settings, keyring: LocalKeyring, tenant: str, rule: PauseRule
) -> None:
    rec = await _call(settings, tenant, [rule])
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    texts = "\n".join(v for x in got for v in text_values(x))
    assert SECRET not in texts
    assert [u.text for u in by_kind(got, "user_utterance")] == ["I want to pay", "thanks"]  # type: ignore[attr-defined]
    (paused,) = _notices(got, "recording_paused")
    assert paused.details["rule"] == rule.label
    assert paused.message == f"paused while {rule.label} is active"
    (resumed,) = _notices(got, "recording_resumed")
    assert resumed.details["rule"] == rule.label
    assert resumed.details["max_duration_reached"] is False
    assert resumed.details["events_not_recorded"] > 0
    if rule.tool is not None:  # the call and its result stay on record (redacted as any text)
        assert [c.name for c in by_kind(got, "tool_call")] == ["collect_card"]  # type: ignore[attr-defined]
        assert len(by_kind(got, "tool_result")) == 1


async def test_a_rule_ends_at_its_maximum_duration_and_cannot_restart_for_that_task(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    rec = await _call(settings, tenant, [PauseRule(agent="CardTask", max_duration=0.1)], wait=0.5)
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    (resumed,) = _notices(got, "recording_resumed")
    assert resumed.details["max_duration_reached"] is True
    assert "maximum duration was reached" in resumed.message
    assert len(_notices(got, "recording_paused")) == 1
    # after the maximum the task's words are recorded again: the rule's limit is real
    assert SECRET in "\n".join(v for x in got for v in text_values(x))


async def test_paused_context_manager_resumes_when_the_block_raises(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    llm = ScriptedLLM([Reply(text="Go ahead."), Reply(text="Noted.")])
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=llm, vad=None)
        rec = recorder.attach(session, tenant=tenant)
        await session.start(Desk())
        with pytest.raises(RuntimeError), rec.paused(reason="card details"):
            assert rec.is_paused
            await session.run(user_input=f"card word {SECRET}")
            raise RuntimeError("payment provider down")
        assert not rec.is_paused
        await session.run(user_input="still recorded")
        await session.aclose()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    assert [u.text for u in by_kind(got, "user_utterance")] == ["still recorded"]  # type: ignore[attr-defined]
    assert _notices(got, "recording_paused")[0].message == "card details"
    assert SECRET not in "\n".join(v for x in got for v in text_values(x))


def test_a_rule_names_one_agent_or_one_tool_and_a_positive_maximum() -> None:
    with pytest.raises(AuditagentError, match="exactly one agent or one tool"):
        PauseRule()
    with pytest.raises(AuditagentError, match="exactly one agent or one tool"):
        PauseRule(agent="A", tool="t")
    with pytest.raises(AuditagentError, match="max_duration"):
        PauseRule(tool="t", max_duration=0)
