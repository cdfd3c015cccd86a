"""SessionCapture against real AgentSessions driven by scripted fakes (no network, no DB)."""

from __future__ import annotations

import asyncio
import inspect
import timeit
from typing import Any

import pytest
from livekit.agents import Agent, AgentSession, RunContext, function_tool
from livekit.agents.voice.events import AgentStateChangedEvent

from auditagent import records as r
from auditagent.capture import RawEvent, SessionCapture, _Hook
from tests.fakes.llm import Reply, ScriptedLLM


class ToolAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a bank agent.")

    @function_tool
    async def get_balance(self, context: RunContext, account: str) -> str:
        """Look up an account balance."""
        return f"balance of {account} is 42"

    @function_tool
    async def close_account(self, context: RunContext, account: str) -> str:
        """Close an account."""
        raise RuntimeError(f"ledger locked for {account}")


def _translate_all(cap: SessionCapture, raw: list[RawEvent]) -> list[r.Record]:
    out: list[r.Record] = []
    for ev in raw:
        out.extend(cap.translate(ev))
    return out


def _kinds(recs: list[r.Record], kind: type[Any]) -> list[Any]:
    return [x for x in recs if isinstance(x, kind)]


async def _text_session(llm: ScriptedLLM, agent: Agent) -> tuple[AgentSession[None], SessionCapture, list[RawEvent]]:
    session: AgentSession[None] = AgentSession(llm=llm, vad=None)
    raw: list[RawEvent] = []
    cap = SessionCapture(session, put=raw.append)
    assert cap.check_transcription(agent=agent) == []
    cap.install()
    await session.start(agent)
    return session, cap, raw


async def test_text_mode_tools_and_errors() -> None:
    llm = ScriptedLLM(
        [
            Reply(text="Hello, how can I help?"),
            Reply(tool_calls=[("get_balance", '{"account": "A-1"}')]),
            Reply(text="Your balance is 42."),
            Reply(tool_calls=[("close_account", '{"account": "B-2"}')]),
            Reply(text="Sorry, that failed."),
        ]
    )
    session, cap, raw = await _text_session(llm, ToolAgent())
    await session.run(user_input="hi")
    await session.run(user_input="what is my balance?")
    await session.run(user_input="close B-2")
    await session.aclose()
    recs = _translate_all(cap, raw)
    assert cap.closed
    for rec in recs:
        assert r.decode(r.encode(rec)) == rec

    users = [u.text for u in _kinds(recs, r.UserUtterance)]
    assert users == ["hi", "what is my balance?", "close B-2"]
    agents = _kinds(recs, r.AgentUtterance)
    assert [a.text for a in agents] == [
        "Hello, how can I help?",
        "Your balance is 42.",
        "Sorry, that failed.",
    ]
    assert all(a.heard_text_known and not a.interrupted for a in agents)

    calls = {c.name: c for c in _kinds(recs, r.ToolCall)}
    assert calls["get_balance"].arguments == '{"account": "A-1"}'
    assert calls["close_account"].arguments == '{"account": "B-2"}'
    results = {t.name: t for t in _kinds(recs, r.ToolResult)}
    ok = results["get_balance"]
    assert not ok.is_error and ok.model_told is not None and "42" in ok.model_told
    assert ok.duration_s is not None and ok.duration_s >= 0
    bad = results["close_account"]
    assert bad.is_error
    assert bad.exception is not None and "ledger locked for B-2" in bad.exception
    assert bad.model_told is not None and "ledger locked" not in bad.model_told
    # each call and result recorded once even though history reconcile also saw them
    assert len(_kinds(recs, r.ToolCall)) == 2 and len(_kinds(recs, r.ToolResult)) == 2
    assert any(t.llm_ttft is not None for t in _kinds(recs, r.TurnTiming))
    closed = recs[-1]
    assert isinstance(closed, r.Closed)
    assert closed.usage and any(u.values for u in closed.usage)


async def test_handlers_never_raise_and_are_cheap() -> None:
    def boom(_: RawEvent) -> None:
        raise RuntimeError("queue broken")

    session: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
    cap = SessionCapture(session, put=boom)
    cap.install()
    ev = AgentStateChangedEvent(old_state="idle", new_state="listening")
    session.emit("agent_state_changed", ev)  # must not raise
    session.emit("conversation_item_added", object())  # type: ignore[arg-type]

    # translate of a weird event degrades to a notice instead of raising
    out = cap.translate(("conversation_item_added", object(), 0.0))
    assert len(out) == 1 and isinstance(out[0], r.Notice)
    out = cap.translate(("tool_execution_updated", 17, 1.0))
    assert isinstance(out[0], r.Notice)

    def plain(ev: Any) -> None:
        pass

    hook = _Hook("x", lambda _: None)

    def sig_cost(o: Any) -> float:
        return min(timeit.repeat(lambda: inspect.signature(o), number=2000, repeat=5)) / 2000

    # a plain function costs ~8 µs in inspect.signature, the precomputed signature ~1.5 µs
    assert sig_cost(hook) < sig_cost(plain) / 2
    cap.uninstall()

    bare: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
    sink: list[RawEvent] = []
    with_hook: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
    SessionCapture(with_hook, put=sink.append).install()

    def cost(s: AgentSession[None]) -> float:
        def once() -> None:
            s.emit("agent_state_changed", ev)
            s._recorded_events.clear()
            sink.clear()

        return min(timeit.repeat(once, number=5000, repeat=5)) / 5000

    naive: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)

    def naive_handler(ev: Any) -> None:
        sink.append(("agent_state_changed", ev, 0.0))

    naive.on("agent_state_changed", naive_handler)
    base, hooked, plain_fn = cost(bare), cost(with_hook), cost(naive)
    print(
        f"emit: {base * 1e6:.2f} µs bare, {hooked * 1e6:.2f} µs with hook, "
        f"{plain_fn * 1e6:.2f} µs with a plain function handler"
    )
    assert hooked - base < (plain_fn - base) * 0.6
    await asyncio.sleep(0)
