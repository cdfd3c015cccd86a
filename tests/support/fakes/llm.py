"""A scripted LLM: each chat() call plays the next scripted reply."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import shortuuid


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    """(name, raw arguments string) pairs, arguments exactly as a model would emit them."""
    ttft: float = 0.0
    chunk_delay: float = 0.0


class ScriptedLLM(llm.LLM):
    def __init__(self, replies: list[Reply], *, fallback: str = "ok") -> None:
        super().__init__()
        self._replies = list(replies)
        self._fallback = fallback
        self.calls = 0

    @property
    def model(self) -> str:
        return "scripted-llm"

    @property
    def provider(self) -> str:
        return "fake"

    def next_reply(self) -> Reply:
        self.calls += 1
        return self._replies.pop(0) if self._replies else Reply(text=self._fallback)

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return _Stream(
            self, self.next_reply(), chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options
        )


class _Stream(llm.LLMStream):
    def __init__(
        self,
        owner: ScriptedLLM,
        reply: Reply,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(owner, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._reply = reply

    async def _run(self) -> None:
        rid = shortuuid("req_")
        if self._reply.ttft:
            await asyncio.sleep(self._reply.ttft)
        words = self._reply.text.split(" ") if self._reply.text else []
        for i, w in enumerate(words):
            piece = w if i == 0 else " " + w
            self._event_ch.send_nowait(
                llm.ChatChunk(id=rid, delta=llm.ChoiceDelta(role="assistant", content=piece))
            )
            if self._reply.chunk_delay:
                await asyncio.sleep(self._reply.chunk_delay)
        if self._reply.tool_calls:
            self._event_ch.send_nowait(
                llm.ChatChunk(
                    id=rid,
                    delta=llm.ChoiceDelta(
                        role="assistant",
                        tool_calls=[
                            llm.FunctionToolCall(name=n, arguments=a, call_id=shortuuid("call_"))
                            for n, a in self._reply.tool_calls
                        ],
                    ),
                )
            )
        self._event_ch.send_nowait(
            llm.ChatChunk(
                id=rid,
                usage=llm.CompletionUsage(
                    completion_tokens=max(1, len(words)),
                    prompt_tokens=10,
                    total_tokens=10 + len(words),
                ),
            )
        )
