"""The OpenAI Realtime simulator's per-connection state and its responses (what the server
sends back); `openai_realtime.py` handles the client's events and the websocket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .script import AgentReply, SpeechSegmenter, ToolCall, agent_speech, text_chunks

if TYPE_CHECKING:
    from .openai_realtime import OpenAIRealtimeSimulator


SAMPLE_RATE = 24000
AUDIO_CHUNK_S = 0.1


def make_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _usage(in_text: int, in_audio: int, out_text: int, out_audio: int) -> dict[str, Any]:
    return {
        "total_tokens": in_text + in_audio + out_text + out_audio,
        "input_tokens": in_text + in_audio,
        "output_tokens": out_text + out_audio,
        "input_token_details": {
            "text_tokens": in_text,
            "audio_tokens": in_audio,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
    }


@dataclass
class _Response:
    id: str
    metadata: Any
    task: asyncio.Task[None] | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    cancel_reason: str | None = None


class SessionBase:
    def __init__(self, sim: OpenAIRealtimeSimulator, ws: web.WebSocketResponse, model: str):
        self.sim = sim
        self.scenario = sim.scenario
        self.ws = ws
        self.model = model
        self.session_id = make_id("sess")
        self.lock = asyncio.Lock()
        self.transcription: dict[str, Any] | None = None
        self.turn_detection: dict[str, Any] | None = {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 300,
            "create_response": True,
            "interrupt_response": True,
        }
        self.modalities = ["audio"]
        self.instructions = ""
        self.tools: list[dict[str, Any]] = []
        self.segmenter = SpeechSegmenter(SAMPLE_RATE)
        self.segments = 0
        self.buffer_bytes = 0
        self.buffer_item: str | None = None  # item id of the segment in the buffer
        self.buffer_line: int | None = None
        self.items: list[str] = []
        self.line: int | None = None  # user line being answered; None = greeting
        self.steps: list[AgentReply | ToolCall] = self.scenario.steps_after(None)
        self.step_pos = 0
        self.response: _Response | None = None
        # the message being spoken, so a cancel can close it: (resp, item, prev, ids, text, audio)
        self._current: tuple[Any, ...] | None = None

    # --- plumbing -------------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", make_id("event"))
        async with self.lock:
            if not self.ws.closed:
                await self.ws.send_str(json.dumps(event))

    async def error(self, code: str, message: str, event_id: str | None = None) -> None:
        await self.send(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": None,
                    "event_id": event_id,
                },
            }
        )

    def session_object(self) -> dict[str, Any]:
        fmt = {"type": "audio/pcm", "rate": SAMPLE_RATE}
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.session_id,
            "model": self.model,
            "output_modalities": self.modalities,
            "instructions": self.instructions,
            "tools": self.tools,
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "audio": {
                "input": {
                    "format": fmt,
                    "transcription": self.transcription,
                    "noise_reduction": None,
                    "turn_detection": self.turn_detection,
                },
                "output": {"format": fmt, "voice": "marin", "speed": 1.0},
            },
        }

    def _append_item(self, item_id: str, previous: str | None = None) -> str | None:
        if previous == "root":
            prev = None
            self.items.insert(0, item_id)
        elif previous and previous in self.items:
            prev = previous
            self.items.insert(self.items.index(previous) + 1, item_id)
        else:
            prev = self.items[-1] if self.items else None
            self.items.append(item_id)
        return prev

    def _answer_line(self, line: int) -> None:
        self.line = line
        self.steps = self.scenario.steps_after(line)
        self.step_pos = 0

    # --- responses ------------------------------------------------------------------------

    def _next_step(self) -> AgentReply | ToolCall | None:
        offered = {t.get("name") for t in self.tools}
        while self.step_pos < len(self.steps):
            step = self.steps[self.step_pos]
            self.step_pos += 1
            if isinstance(step, ToolCall) and step.name not in offered:
                continue  # a model cannot call a tool it was not given
            return step
        replies = [s for s in self.steps if isinstance(s, AgentReply)]
        return replies[-1] if replies else None

    async def start_response(self, metadata: Any) -> None:
        resp = _Response(id=make_id("resp"), metadata=metadata)
        self.response = resp
        await self.send({"type": "response.created", "response": self._response_obj(resp)})
        step = self._next_step()
        resp.task = asyncio.create_task(self._run_response(resp, step))

    def _response_obj(
        self, resp: _Response, status: str = "in_progress", usage: Any = None
    ) -> dict[str, Any]:
        details: dict[str, Any] | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": resp.cancel_reason or "client_cancelled"}
        return {
            "object": "realtime.response",
            "id": resp.id,
            "status": status,
            "status_details": details,
            "output": resp.output,
            "conversation_id": "conv_" + self.session_id,
            "output_modalities": self.modalities,
            "metadata": resp.metadata,
            "usage": usage,
        }

    async def _run_response(self, resp: _Response, step: AgentReply | ToolCall | None) -> None:
        try:
            if isinstance(step, ToolCall):
                await self._function_call(resp, step)
                out_text, out_audio = len(step.arguments_json) // 4, 0
            else:
                text = step.text if step else ""
                await self._message(resp, text)
                out_text, out_audio = len(text) // 4, len(text) // 2
            self.response = None
            await self.send(
                {
                    "type": "response.done",
                    "response": self._response_obj(
                        resp, "completed", _usage(120, 40, out_text, out_audio)
                    ),
                }
            )
        except asyncio.CancelledError:
            raise
        except ConnectionResetError:
            self.response = None

    async def _function_call(self, resp: _Response, step: ToolCall) -> None:
        item_id = make_id("item")
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "call_id": step.call_id,
            "name": step.name,
            "arguments": "",
        }
        prev = self._append_item(item_id)
        base = {"response_id": resp.id, "output_index": 0}
        await self.send({"type": "response.output_item.added", **base, "item": item})
        await self.send({"type": "conversation.item.added", "previous_item_id": prev, "item": item})
        args = step.arguments_json
        for i in range(0, len(args), 8):
            await self.send(
                {
                    "type": "response.function_call_arguments.delta",
                    **base,
                    "item_id": item_id,
                    "call_id": step.call_id,
                    "delta": args[i : i + 8],
                }
            )
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                **base,
                "item_id": item_id,
                "call_id": step.call_id,
                "name": step.name,
                "arguments": args,
            }
        )
        done = {**item, "status": "completed", "arguments": args}
        resp.output.append(done)
        await self.send({"type": "response.output_item.done", **base, "item": done})
        await self.send({"type": "conversation.item.done", "previous_item_id": prev, "item": done})

    async def _message(self, resp: _Response, text: str) -> None:
        item_id = make_id("item")
        audio_out = "audio" in self.modalities
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        prev = self._append_item(item_id)
        base = {"response_id": resp.id, "output_index": 0}
        ibase = {**base, "item_id": item_id, "content_index": 0}
        await self.send({"type": "response.output_item.added", **base, "item": item})
        await self.send({"type": "conversation.item.added", "previous_item_id": prev, "item": item})
        part_type = "audio" if audio_out else "text"
        empty_part = {"type": part_type, "transcript" if audio_out else "text": ""}
        await self.send({"type": "response.content_part.added", **ibase, "part": empty_part})
        self._current = (resp, item, prev, ibase, text, audio_out)
        if audio_out:
            pcm = agent_speech(text, SAMPLE_RATE) if text else b""
            pieces = list(text_chunks(text))
            step = int(SAMPLE_RATE * AUDIO_CHUNK_S) * 2
            n_chunks = max(1, -(-len(pcm) // step))
            next_piece = 0
            for i in range(n_chunks):
                # the transcript runs slightly ahead of the audio, as the real service does
                while next_piece < len(pieces) and next_piece * n_chunks <= i * len(pieces):
                    await self.send(
                        {
                            "type": "response.output_audio_transcript.delta",
                            **ibase,
                            "delta": pieces[next_piece],
                        }
                    )
                    next_piece += 1
                chunk = pcm[i * step : (i + 1) * step]
                if chunk:
                    await self.send(
                        {
                            "type": "response.output_audio.delta",
                            **ibase,
                            "delta": base64.b64encode(chunk).decode(),
                        }
                    )
                await asyncio.sleep(AUDIO_CHUNK_S / self.sim.pace)
            for piece in pieces[next_piece:]:
                await self.send(
                    {"type": "response.output_audio_transcript.delta", **ibase, "delta": piece}
                )
            await self.send({"type": "response.output_audio.done", **ibase})
            await self.send(
                {"type": "response.output_audio_transcript.done", **ibase, "transcript": text}
            )
        else:
            for piece in text_chunks(text):
                await self.send({"type": "response.output_text.delta", **ibase, "delta": piece})
                await asyncio.sleep(0.005)
            await self.send({"type": "response.output_text.done", **ibase, "text": text})
        await self._finish_message(resp, item, prev, ibase, text, audio_out, "completed")

    async def _finish_message(
        self,
        resp: _Response,
        item: dict[str, Any],
        prev: str | None,
        ibase: dict[str, Any],
        text: str,
        audio_out: bool,
        status: str,
    ) -> None:
        part = (
            {"type": "output_audio", "transcript": text}
            if audio_out
            else {"type": "output_text", "text": text}
        )
        done_part = (
            {"type": "audio", "transcript": text} if audio_out else {"type": "text", "text": text}
        )
        await self.send({"type": "response.content_part.done", **ibase, "part": done_part})
        done = {**item, "status": status, "content": [part]}
        resp.output.append(done)
        base = {"response_id": resp.id, "output_index": 0}
        await self.send({"type": "response.output_item.done", **base, "item": done})
        await self.send({"type": "conversation.item.done", "previous_item_id": prev, "item": done})

    async def cancel_response(self, reason: str) -> None:
        resp = self.response
        if resp is None:
            return
        self.response = None
        resp.cancel_reason = reason
        if resp.task is not None:
            resp.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await resp.task
        current = self._current
        if current is not None and current[0] is resp:
            _, item, prev, ibase, text, audio_out = current
            heard = text  # the real service reports the full text; the client truncates
            if audio_out:
                await self.send({"type": "response.output_audio.done", **ibase})
                await self.send(
                    {"type": "response.output_audio_transcript.done", **ibase, "transcript": heard}
                )
            await self._finish_message(resp, item, prev, ibase, heard, audio_out, "incomplete")
        self.sim.cancellations.append((resp.id, reason))
        await self.send(
            {
                "type": "response.done",
                "response": self._response_obj(resp, "cancelled", _usage(120, 40, 5, 10)),
            }
        )

    async def close(self) -> None:
        if self.response is not None and self.response.task is not None:
            self.response.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.response.task
