"""OpenAI Realtime (GA event names) websocket simulator at `/v1/realtime?model=...`.

Server VAD comes from audio energy (`script.SpeechSegmenter`); the Nth speech segment of a
connection is the scenario's Nth user line. User transcription events are sent only while
the session has `audio.input.transcription` set. Responses play the scenario's next step
for the current user line: a function_call item, or an assistant message with PCM16
24 kHz audio paced at `pace` times real time plus its transcript.

Event names follow what livekit-agents 1.8.9 (`llm/_realtime/openai.py`) handles:
`conversation.item.added`, `response.output_audio.delta`,
`response.output_audio_transcript.delta`, `response.output_text.delta`, ...
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .script import (
    USER_SECONDS_PER_CHAR,
    AgentReply,
    Scenario,
    SpeechSegmenter,
    ToolCall,
    agent_speech,
    text_chunks,
)

SAMPLE_RATE = 24000
AUDIO_CHUNK_S = 0.1


def _id(prefix: str) -> str:
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


class _Session:
    def __init__(self, sim: OpenAIRealtimeSimulator, ws: web.WebSocketResponse, model: str):
        self.sim = sim
        self.scenario = sim.scenario
        self.ws = ws
        self.model = model
        self.session_id = _id("sess")
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
        event.setdefault("event_id", _id("event"))
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

    # --- client events --------------------------------------------------------------------

    async def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        eid = event.get("event_id")
        if kind == "session.update":
            self.apply_session(event.get("session") or {})
            await self.send({"type": "session.updated", "session": self.session_object()})
        elif kind == "input_audio_buffer.append":
            await self.on_audio(base64.b64decode(event.get("audio", "")))
        elif kind == "input_audio_buffer.commit":
            await self.commit(manual=True, event_id=eid)
        elif kind == "input_audio_buffer.clear":
            self.buffer_bytes = 0
            self.buffer_item = None
            self.buffer_line = None
            await self.send({"type": "input_audio_buffer.cleared"})
        elif kind == "conversation.item.create":
            await self.create_item(event)
        elif kind == "conversation.item.delete":
            item_id = event.get("item_id")
            if item_id in self.items:
                self.items.remove(item_id)
                await self.send({"type": "conversation.item.deleted", "item_id": item_id})
            else:
                await self.error("item_delete_invalid_item_id", f"no item {item_id}", eid)
        elif kind == "conversation.item.truncate":
            item_id = event.get("item_id")
            if item_id not in self.items:
                await self.error("item_truncate_invalid_item_id", f"no item {item_id}", eid)
                return
            self.sim.truncations.append((item_id, int(event.get("audio_end_ms", 0))))
            await self.send(
                {
                    "type": "conversation.item.truncated",
                    "item_id": item_id,
                    "content_index": event.get("content_index", 0),
                    "audio_end_ms": event.get("audio_end_ms", 0),
                }
            )
        elif kind == "response.create":
            if self.response is not None:
                await self.error(
                    "conversation_already_has_active_response",
                    "Conversation already has an active response in progress",
                    eid,
                )
                return
            await self.start_response((event.get("response") or {}).get("metadata"))
        elif kind == "response.cancel":
            if self.response is None:
                await self.error(
                    "response_cancel_not_active",
                    "Cancellation failed: no active response found",
                    eid,
                )
                return
            await self.cancel_response("client_cancelled")
        else:
            await self.error("unknown_event", f"unsupported event type {kind!r}", eid)

    def apply_session(self, session: dict[str, Any]) -> None:
        # session.update is partial: only keys present change
        audio_in = (session.get("audio") or {}).get("input") or {}
        if "transcription" in audio_in:
            self.transcription = audio_in["transcription"]
        if "turn_detection" in audio_in:
            td = audio_in["turn_detection"]
            if td is not None:
                td = {"create_response": True, "interrupt_response": True, **td}
            self.turn_detection = td
        if "output_modalities" in session:
            self.modalities = list(session["output_modalities"] or ["audio"])
        if "instructions" in session:
            self.instructions = session["instructions"] or ""
        if "tools" in session:
            self.tools = list(session["tools"] or [])

    async def on_audio(self, pcm: bytes) -> None:
        self.buffer_bytes += len(pcm)
        for kind, t in self.segmenter.feed(pcm):
            if kind == "start":
                line = self.segments
                self.segments += 1
                self.buffer_item = _id("item")
                self.buffer_line = line
                if self.turn_detection is not None:
                    await self.send(
                        {
                            "type": "input_audio_buffer.speech_started",
                            "audio_start_ms": int(t * 1000),
                            "item_id": self.buffer_item,
                        }
                    )
                    if self.response is not None and self.turn_detection.get(
                        "interrupt_response", True
                    ):
                        await self.cancel_response("turn_detected")
            elif kind == "end" and self.turn_detection is not None:
                await self.send(
                    {
                        "type": "input_audio_buffer.speech_stopped",
                        "audio_end_ms": int(t * 1000),
                        "item_id": self.buffer_item,
                    }
                )
                await self.commit(manual=False)

    async def commit(self, *, manual: bool, event_id: str | None = None) -> None:
        if manual and self.buffer_bytes < SAMPLE_RATE * 2 // 10:
            await self.error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small.",
                event_id,
            )
            return
        if manual:
            # a manual commit closes whatever segment is open
            self.segmenter.flush()
        item_id = self.buffer_item or _id("item")
        line = self.buffer_line
        if line is None:
            line = self.segments
            self.segments += 1
        self.buffer_item = None
        self.buffer_line = None
        self.buffer_bytes = 0
        prev = self._append_item(item_id)
        await self.send(
            {"type": "input_audio_buffer.committed", "previous_item_id": prev, "item_id": item_id}
        )
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.send({"type": "conversation.item.added", "previous_item_id": prev, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": prev, "item": item})
        self._answer_line(line)
        if self.transcription is not None:
            text = self.scenario.user_line(line)
            for part in text_chunks(text, 2):
                await self.send(
                    {
                        "type": "conversation.item.input_audio_transcription.delta",
                        "item_id": item_id,
                        "content_index": 0,
                        "delta": part,
                    }
                )
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": text,
                    "usage": {
                        "type": "duration",
                        "seconds": round(len(text) * USER_SECONDS_PER_CHAR, 2),
                    },
                }
            )
        if (
            not manual
            and self.turn_detection is not None
            and self.turn_detection.get("create_response", True)
            and self.response is None
        ):
            await self.start_response(None)

    async def create_item(self, event: dict[str, Any]) -> None:
        item = dict(event.get("item") or {})
        item_id = item.get("id") or _id("item")
        if item_id in self.items:
            await self.error(
                "item_create_duplicate_item_id", f"duplicate item {item_id}", event.get("event_id")
            )
            return
        item["id"] = item_id
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        prev = self._append_item(item_id, event.get("previous_item_id"))
        await self.send({"type": "conversation.item.added", "previous_item_id": prev, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": prev, "item": item})
        if item.get("type") == "message" and item.get("role") == "user":
            text = "".join(
                c.get("text", "")
                for c in item.get("content") or []
                if c.get("type") == "input_text"
            )
            line = self.scenario.match_user_text(text)
            if line is not None:
                self._answer_line(line)

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
        resp = _Response(id=_id("resp"), metadata=metadata)
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
        item_id = _id("item")
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
        item_id = _id("item")
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


class OpenAIRealtimeSimulator:
    def __init__(self, scenario: Scenario, *, pace: float = 4.0) -> None:
        self.scenario = scenario
        # how many times faster than real time assistant audio is streamed out; finite so
        # a long reply is still in progress when the user barges in
        self.pace = pace
        self.sessions = 0
        self.truncations: list[tuple[str, int]] = []
        self.cancellations: list[tuple[str, str]] = []
        self.client_events: list[str] = []

    def register(self, app: web.Application, prefix: str = "/v1") -> None:
        app.router.add_get(f"{prefix}/realtime", self.handle_ws)

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            raise web.HTTPUnauthorized(text="missing bearer")
        model = request.query.get("model", "gpt-realtime")
        ws = web.WebSocketResponse(max_msg_size=32 * 1024 * 1024)
        await ws.prepare(request)
        self.sessions += 1
        session = _Session(self, ws, model)
        await session.send({"type": "session.created", "session": session.session_object()})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        event = json.loads(msg.data)
                    except ValueError:
                        await session.error("invalid_json", "could not parse event")
                        continue
                    if event.get("type") != "input_audio_buffer.append":
                        self.client_events.append(str(event.get("type")))
                    await session.handle(event)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            await session.close()
        return ws
