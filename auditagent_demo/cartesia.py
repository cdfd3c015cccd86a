"""Cartesia text-to-speech simulator: `/tts/websocket` (contexts) and `/tts/bytes`.

Audio is the synthetic agent voice from `script.agent_speech`, whose duration follows the
text (AGENT_SECONDS_PER_CHAR), so a longer sentence always yields longer audio. Word
timestamps are sent when a request asks for them (`add_timestamps`).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from .script import AGENT_SECONDS_PER_CHAR, SUPPORTED_RATES, agent_speech, pcm_chunks, word_timings

CHUNK_S = 0.1


def _render(text: str, output_format: dict[str, Any]) -> bytes:
    rate = int(output_format.get("sample_rate", 24000))
    if rate not in SUPPORTED_RATES:
        raise ValueError(f"unsupported sample_rate {rate}")
    encoding = output_format.get("encoding", "pcm_s16le")
    pcm = agent_speech(text, rate) if text.strip() else b""
    if encoding == "pcm_s16le":
        return pcm
    if encoding == "pcm_f32le":
        return (np.frombuffer(pcm, dtype="<i2").astype("<f4") / 32768.0).tobytes()
    raise ValueError(f"unsupported encoding {encoding!r}")


@dataclass
class _Context:
    offset_s: float = 0.0
    done: bool = False


class CartesiaSimulator:
    def __init__(self, scenario: Any) -> None:
        self.scenario = scenario
        # every transcript fragment received, in order, for tests
        self.transcripts: list[str] = []

    def register(self, app: web.Application) -> None:
        app.router.add_get("/tts/websocket", self.handle_ws)
        app.router.add_post("/tts/bytes", self.handle_bytes)

    async def handle_bytes(self, request: web.Request) -> web.StreamResponse:
        if not request.headers.get("X-API-Key"):
            raise web.HTTPUnauthorized(text="missing X-API-Key")
        body = await request.json()
        text = str(body.get("transcript", ""))
        self.transcripts.append(text)
        try:
            audio = _render(text, body.get("output_format") or {})
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        for chunk in pcm_chunks(audio, 24000, CHUNK_S):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        # the plugin authenticates with the X-API-Key header; browsers use ?api_key=
        if not (request.headers.get("X-API-Key") or request.query.get("api_key")):
            raise web.HTTPUnauthorized(text="missing X-API-Key")
        ws = web.WebSocketResponse()
        ws.headers["x-request-id"] = str(uuid.uuid4())
        await ws.prepare(request)
        contexts: dict[str, _Context] = {}
        flushes = 0
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.ERROR:
                    break
                continue
            try:
                req = json.loads(msg.data)
            except ValueError:
                await ws.send_json({"type": "error", "error": "invalid json", "status_code": 400})
                continue
            context_id = str(req.get("context_id") or uuid.uuid4())
            if req.get("cancel"):
                ctx = contexts.setdefault(context_id, _Context())
                ctx.done = True
                continue
            ctx = contexts.setdefault(context_id, _Context())
            if ctx.done:
                continue
            text = str(req.get("transcript", ""))
            self.transcripts.append(text)
            fmt = req.get("output_format") or {}
            try:
                audio = _render(text, fmt)
            except ValueError as e:
                await ws.send_json(
                    {
                        "type": "error",
                        "context_id": context_id,
                        "status_code": 400,
                        "done": True,
                        "error": str(e),
                    }
                )
                continue
            rate = int(fmt.get("sample_rate", 24000))
            width = 4 if fmt.get("encoding") == "pcm_f32le" else 2
            if req.get("add_timestamps") and text.strip():
                words = word_timings(text, start=ctx.offset_s, per_char=AGENT_SECONDS_PER_CHAR)
                await ws.send_json(
                    {
                        "type": "timestamps",
                        "context_id": context_id,
                        "status_code": 206,
                        "done": False,
                        "word_timestamps": {
                            "words": [w for w, _, _ in words],
                            "start": [s for _, s, _ in words],
                            "end": [e for _, _, e in words],
                        },
                    }
                )
            step = int(rate * CHUNK_S) * width
            for i in range(0, len(audio), step):
                await ws.send_json(
                    {
                        "type": "chunk",
                        "context_id": context_id,
                        "status_code": 206,
                        "done": False,
                        "step_time": 1.0,
                        "data": base64.b64encode(audio[i : i + step]).decode(),
                    }
                )
            ctx.offset_s += len(audio) / width / rate
            if req.get("flush"):
                flushes += 1
                await ws.send_json(
                    {
                        "type": "flush_done",
                        "context_id": context_id,
                        "flush_done": True,
                        "flush_id": flushes,
                        "status_code": 206,
                        "done": False,
                    }
                )
            if req.get("continue") is False:
                ctx.done = True
                await ws.send_json(
                    {"type": "done", "context_id": context_id, "status_code": 200, "done": True}
                )
        return ws
