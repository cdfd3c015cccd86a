"""Gemini Live (BidiGenerateContent) websocket simulator.

Path as google-genai dials it with an API key:
`/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent`.
The first client message is `setup` (answered by `setupComplete`); then `realtimeInput`
(16 kHz PCM16 audio, or activityStart/activityEnd when automatic activity detection is
off), `clientContent` and `toolResponse`. The server sends `serverContent` (modelTurn
inlineData 24 kHz audio, inputTranscription / outputTranscription only when the setup
asked for them, generationComplete, turnComplete, interrupted), `toolCall` and
`usageMetadata`. The Nth speech segment of a connection is the scenario's Nth user line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from .script import (
    AgentReply,
    Scenario,
    SpeechSegmenter,
    ToolCall,
    agent_speech,
    text_chunks,
)

INPUT_RATE = 16000
OUTPUT_RATE = 24000
AUDIO_CHUNK_S = 0.1
PATH_RE = re.compile(
    r"^/ws/google\.ai\.generativelanguage\.(v1alpha|v1beta|v1)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)$"
)


def _b64(data: str) -> bytes:
    """google-genai encodes bytes as url-safe base64, sometimes without padding."""
    data = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(data + "=" * (-len(data) % 4))


def _get(d: dict[str, Any] | None, camel: str, snake: str | None = None) -> Any:
    """Field lookup tolerant of camelCase (wire) and snake_case (some SDK paths)."""
    if not d:
        return None
    if camel in d:
        return d[camel]
    snake = snake or re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()
    return d.get(snake)


class _Session:
    def __init__(self, sim: GeminiLiveSimulator, ws: web.WebSocketResponse) -> None:
        self.sim = sim
        self.scenario = sim.scenario
        self.ws = ws
        self.lock = asyncio.Lock()
        self.input_transcription = False
        self.output_transcription = False
        self.manual_activity = False
        self.tool_names: set[str] = set()
        self.segmenter = SpeechSegmenter(INPUT_RATE)
        self.segments = 0
        self.line: int | None = None
        self.steps: list[AgentReply | ToolCall] = self.scenario.steps_after(None)
        self.step_pos = 0
        self.turn_task: asyncio.Task[None] | None = None
        self.speaking = False  # model audio of the current turn still going out
        self.pending_calls: set[str] = set()
        self.activity_line: int | None = None

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            if not self.ws.closed:
                await self.ws.send_str(json.dumps(message))

    def setup(self, setup: dict[str, Any]) -> None:
        self.sim.setups.append(setup)
        self.input_transcription = _get(setup, "inputAudioTranscription") is not None
        self.output_transcription = _get(setup, "outputAudioTranscription") is not None
        ric = _get(setup, "realtimeInputConfig") or {}
        aad = _get(ric, "automaticActivityDetection") or {}
        self.manual_activity = bool(_get(aad, "disabled"))
        for tool in _get(setup, "tools") or []:
            for decl in _get(tool, "functionDeclarations") or []:
                if decl.get("name"):
                    self.tool_names.add(decl["name"])

    # --- client messages ------------------------------------------------------------------

    async def handle(self, msg: dict[str, Any]) -> None:
        if (rt := _get(msg, "realtimeInput")) is not None:
            await self.realtime_input(rt)
        elif (cc := _get(msg, "clientContent")) is not None:
            await self.client_content(cc)
        elif (tr := _get(msg, "toolResponse")) is not None:
            await self.tool_response(tr)
        else:
            self.sim.unknown_messages.append(msg)

    async def realtime_input(self, rt: dict[str, Any]) -> None:
        blobs: list[dict[str, Any]] = []
        if (audio := _get(rt, "audio")) is not None:
            blobs.append(audio)
        blobs.extend(_get(rt, "mediaChunks") or [])
        for blob in blobs:
            mime = str(_get(blob, "mimeType") or "")
            if not mime.startswith("audio/pcm"):
                continue
            m = re.search(r"rate=(\d+)", mime)
            if m and int(m.group(1)) != self.segmenter.sample_rate:
                self.segmenter = SpeechSegmenter(int(m.group(1)))
            for kind, _ in self.segmenter.feed(_b64(_get(blob, "data") or "")):
                if self.manual_activity:
                    continue  # the client decides turns with activityStart/activityEnd
                if kind == "start":
                    await self.user_started()
                elif kind == "end":
                    await self.user_finished()
        if _get(rt, "activityStart") is not None:
            await self.user_started()
        if _get(rt, "activityEnd") is not None:
            await self.user_finished()
        if text := _get(rt, "text"):
            line = self.scenario.match_user_text(str(text))
            if line is not None:
                self._answer(line)
            await self.start_turn()

    async def user_started(self) -> None:
        self.activity_line = self.segments
        self.segments += 1
        if self.turn_task is not None and not self.turn_task.done() and self.speaking:
            # barge-in: the model stops and says so
            self.turn_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.turn_task
            self.speaking = False
            self.sim.interruptions += 1
            await self.send({"serverContent": {"interrupted": True}})
            await self.send({"serverContent": {"turnComplete": True}})

    async def user_finished(self) -> None:
        if self.activity_line is None:
            return
        line, self.activity_line = self.activity_line, None
        self._answer(line)
        if self.input_transcription:
            for piece in text_chunks(self.scenario.user_line(line), 2):
                # the service prefixes pieces with a space; the plugin strips the first
                await self.send(
                    {"serverContent": {"inputTranscription": {"text": " " + piece.strip()}}}
                )
        await self.start_turn()

    async def client_content(self, cc: dict[str, Any]) -> None:
        for turn in _get(cc, "turns") or []:
            if turn.get("role") == "user":
                text = "".join(p.get("text", "") for p in turn.get("parts") or [])
                line = self.scenario.match_user_text(text)
                if line is not None:
                    self._answer(line)
        if _get(cc, "turnComplete"):
            await self.start_turn()

    async def tool_response(self, tr: dict[str, Any]) -> None:
        for fr in _get(tr, "functionResponses") or []:
            self.sim.tool_responses.append(fr)
            self.pending_calls.discard(str(fr.get("id")))
        if not self.pending_calls:
            await self.start_turn()

    # --- model turns ----------------------------------------------------------------------

    def _answer(self, line: int) -> None:
        self.line = line
        self.steps = self.scenario.steps_after(line)
        self.step_pos = 0

    def _next_step(self) -> AgentReply | ToolCall | None:
        while self.step_pos < len(self.steps):
            step = self.steps[self.step_pos]
            self.step_pos += 1
            if isinstance(step, ToolCall) and step.name not in self.tool_names:
                continue
            return step
        replies = [s for s in self.steps if isinstance(s, AgentReply)]
        return replies[-1] if replies else None

    async def start_turn(self) -> None:
        if self.turn_task is not None and not self.turn_task.done():
            self.turn_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.turn_task
        self.turn_task = asyncio.create_task(self._turn(self._next_step()))

    async def _turn(self, step: AgentReply | ToolCall | None) -> None:
        if isinstance(step, ToolCall):
            self.pending_calls.add(step.call_id)
            await self.send(
                {
                    "toolCall": {
                        "functionCalls": [
                            {"id": step.call_id, "name": step.name, "args": step.arguments}
                        ]
                    }
                }
            )
            await self.send(self._usage(len(step.arguments_json) // 4, 0))
            return
        text = step.text if step else ""
        pcm = agent_speech(text, OUTPUT_RATE) if text else b""
        pieces = list(text_chunks(text))
        step_bytes = int(OUTPUT_RATE * AUDIO_CHUNK_S) * 2
        n_chunks = max(1, -(-len(pcm) // step_bytes)) if pcm else 0
        next_piece = 0
        self.speaking = True
        try:
            for i in range(n_chunks):
                chunk = pcm[i * step_bytes : (i + 1) * step_bytes]
                await self.send(
                    {
                        "serverContent": {
                            "modelTurn": {
                                "role": "model",
                                "parts": [
                                    {
                                        "inlineData": {
                                            "mimeType": f"audio/pcm;rate={OUTPUT_RATE}",
                                            "data": base64.b64encode(chunk).decode(),
                                        }
                                    }
                                ],
                            }
                        }
                    }
                )
                if self.output_transcription:
                    while next_piece < len(pieces) and next_piece * n_chunks <= i * len(pieces):
                        await self.send(
                            {"serverContent": {"outputTranscription": {"text": pieces[next_piece]}}}
                        )
                        next_piece += 1
                await asyncio.sleep(AUDIO_CHUNK_S / self.sim.pace)
            if self.output_transcription:
                for piece in pieces[next_piece:]:
                    await self.send({"serverContent": {"outputTranscription": {"text": piece}}})
        finally:
            self.speaking = False
        await self.send({"serverContent": {"generationComplete": True}})
        await self.send({"serverContent": {"turnComplete": True}})
        await self.send(self._usage(len(text) // 4, len(text) // 2))

    @staticmethod
    def _usage(out_text: int, out_audio: int) -> dict[str, Any]:
        prompt = 160
        return {
            "usageMetadata": {
                "promptTokenCount": prompt,
                "responseTokenCount": out_text + out_audio,
                "totalTokenCount": prompt + out_text + out_audio,
                "promptTokensDetails": [
                    {"modality": "TEXT", "tokenCount": 120},
                    {"modality": "AUDIO", "tokenCount": 40},
                ],
                "responseTokensDetails": [
                    {"modality": "TEXT", "tokenCount": out_text},
                    {"modality": "AUDIO", "tokenCount": out_audio},
                ],
            }
        }

    async def close(self) -> None:
        if self.turn_task is not None:
            self.turn_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.turn_task


class GeminiLiveSimulator:
    def __init__(self, scenario: Scenario, *, pace: float = 4.0) -> None:
        self.scenario = scenario
        # how many times faster than real time model audio goes out; finite so that a long
        # reply is still being spoken when the user barges in
        self.pace = pace
        self.sessions = 0
        self.setups: list[dict[str, Any]] = []
        self.tool_responses: list[dict[str, Any]] = []
        self.unknown_messages: list[dict[str, Any]] = []
        self.interruptions = 0

    def register(self, app: web.Application) -> None:
        app.router.add_get("/{path:ws/.*}", self.handle_ws)

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        if not PATH_RE.match(request.path):
            raise web.HTTPNotFound(text=f"unknown path {request.path}")
        if not (request.headers.get("x-goog-api-key") or request.query.get("key")):
            raise web.HTTPUnauthorized(text="missing API key")
        ws = web.WebSocketResponse(max_msg_size=32 * 1024 * 1024)
        await ws.prepare(request)
        self.sessions += 1
        session = _Session(self, ws)
        try:
            first = await ws.receive()
            if first.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return ws
            setup = _get(json.loads(first.data), "setup")
            if setup is None:
                await ws.close(code=1007, message=b"first message must be setup")
                return ws
            session.setup(setup)
            await session.send({"setupComplete": {"sessionId": uuid.uuid4().hex}})
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await session.handle(json.loads(msg.data))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            await session.close()
        return ws
