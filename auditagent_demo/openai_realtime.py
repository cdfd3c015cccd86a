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

import base64
import json
from typing import Any

from aiohttp import WSMsgType, web

from .openai_realtime_session import SAMPLE_RATE, SessionBase, make_id
from .script import USER_SECONDS_PER_CHAR, Scenario, text_chunks


class _Session(SessionBase):
    """One client connection: the events the client sends."""

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
                self.buffer_item = make_id("item")
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
        item_id = self.buffer_item or make_id("item")
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
        item_id = item.get("id") or make_id("item")
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
