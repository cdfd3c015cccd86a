"""OpenAI-compatible HTTP simulator: streaming chat completions and audio transcriptions.

`POST /v1/chat/completions` is stateless: the reply is chosen from the request's own
messages (which user line the last user message is, and which scripted tool results are
already present after it), so retries, parallel sessions and replays all agree.
`POST /v1/audio/transcriptions` identifies the user line of an uploaded WAV from the
duration of its speech segments.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
import wave
from typing import Any

from aiohttp import web

from .script import (
    AgentReply,
    Scenario,
    ToolCall,
    closest_user_line,
    find_segments,
    text_chunks,
)

# Pause between SSE chunks: long enough that a client can cancel mid-reply, short enough
# to keep tests fast.
CHUNK_DELAY_S = 0.005
ARGUMENT_PIECE = 8


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def choose_step(scenario: Scenario, body: dict[str, Any]) -> AgentReply | ToolCall | None:
    """The scripted step answering this chat request."""
    messages: list[dict[str, Any]] = body.get("messages") or []
    user_positions = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    user_index: int | None = None
    after = 0
    if user_positions:
        last = user_positions[-1]
        after = last + 1
        user_index = scenario.match_user_text(_text_of(messages[last].get("content")))
        if user_index is None:
            # an unscripted wording (another STT): fall back to the turn count
            user_index = len(user_positions) - 1
    tail = messages[after:]
    answered = {m.get("tool_call_id") for m in tail if m.get("role") == "tool"}
    said = {_text_of(m.get("content")) for m in tail if m.get("role") == "assistant"}
    offered = {
        (t.get("function") or {}).get("name")
        for t in body.get("tools") or []
        if isinstance(t, dict)
    }
    tools_allowed = body.get("tool_choice") != "none"
    steps = scenario.steps_after(user_index)
    for step in steps:
        if isinstance(step, ToolCall):
            # a model cannot call a tool it was not offered
            if step.call_id in answered or step.name not in offered or not tools_allowed:
                continue
            return step
        if step.text not in said:
            return step
    replies = [s for s in steps if isinstance(s, AgentReply)]
    return replies[-1] if replies else None


class OpenAISimulator:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.chat_requests: list[dict[str, Any]] = []
        self.transcription_requests = 0

    def register(self, app: web.Application, prefix: str = "/v1") -> None:
        app.router.add_post(f"{prefix}/chat/completions", self.handle_chat)
        app.router.add_post(f"{prefix}/audio/transcriptions", self.handle_transcription)

    @staticmethod
    def _check_auth(request: web.Request) -> None:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            raise web.HTTPUnauthorized(
                text=json.dumps({"error": {"message": "missing bearer", "type": "auth"}}),
                content_type="application/json",
            )

    async def handle_chat(self, request: web.Request) -> web.StreamResponse:
        self._check_auth(request)
        body = await request.json()
        self.chat_requests.append(body)
        step = choose_step(self.scenario, body)
        model = body.get("model", "gpt-4o-mini")
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        prompt_tokens = sum(
            _approx_tokens(_text_of(m.get("content"))) for m in body.get("messages") or []
        )

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_simulator",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }

        pieces: list[dict[str, Any]] = []
        if isinstance(step, ToolCall):
            args = step.arguments_json
            pieces.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": step.call_id,
                            "type": "function",
                            "function": {"name": step.name, "arguments": ""},
                        }
                    ],
                }
            )
            for i in range(0, len(args), ARGUMENT_PIECE):
                pieces.append(
                    {
                        "tool_calls": [
                            {"index": 0, "function": {"arguments": args[i : i + ARGUMENT_PIECE]}}
                        ]
                    }
                )
            finish = "tool_calls"
            completion_tokens = _approx_tokens(args)
        else:
            text = step.text if step else ""
            pieces.append({"role": "assistant", "content": ""})
            pieces.extend({"content": part} for part in text_chunks(text))
            finish = "stop"
            completion_tokens = _approx_tokens(text)

        if not body.get("stream"):
            return web.json_response(self._non_streaming(step, chunk, finish))

        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "x-request-id": completion_id,
            }
        )
        await resp.prepare(request)

        async def send(obj: dict[str, Any]) -> None:
            await resp.write(f"data: {json.dumps(obj)}\n\n".encode())

        for delta in pieces:
            await send(chunk(delta))
            await asyncio.sleep(CHUNK_DELAY_S)
        await send(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage_chunk = chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            }
            await send(usage_chunk)
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    @staticmethod
    def _non_streaming(
        step: AgentReply | ToolCall | None, chunk: Any, finish: str
    ) -> dict[str, Any]:
        base = chunk({})
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if isinstance(step, ToolCall):
            message["tool_calls"] = [
                {
                    "id": step.call_id,
                    "type": "function",
                    "function": {"name": step.name, "arguments": step.arguments_json},
                }
            ]
        else:
            message["content"] = step.text if step else ""
        return {
            "id": base["id"],
            "object": "chat.completion",
            "created": base["created"],
            "model": base["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }

    async def handle_transcription(self, request: web.Request) -> web.Response:
        self._check_auth(request)
        self.transcription_requests += 1
        form = await request.post()
        upload = form.get("file")
        if upload is None or not hasattr(upload, "file"):
            raise web.HTTPBadRequest(text="file is required")
        data = upload.file.read()
        try:
            with wave.open(io.BytesIO(data), "rb") as wav:
                rate = wav.getframerate()
                channels = wav.getnchannels()
                pcm = wav.readframes(wav.getnframes())
        except (wave.Error, EOFError) as e:
            raise web.HTTPBadRequest(text=f"expected a WAV upload: {e}") from None
        if channels != 1:
            import numpy as np

            pcm = np.frombuffer(pcm, dtype="<i2")[::channels].tobytes()
        duration = len(pcm) / 2 / rate
        segments = find_segments(pcm, rate)
        lines = [
            self.scenario.user_line(closest_user_line(self.scenario, end - start))
            for start, end in segments
        ]
        text = " ".join(lines)
        fmt = str(form.get("response_format", "json"))
        if fmt == "text":
            return web.Response(text=text)
        if fmt == "verbose_json":
            return web.json_response(
                {
                    "task": "transcribe",
                    "language": "english" if self.scenario.language == "en" else "unknown",
                    "duration": round(duration, 3),
                    "text": text,
                    "segments": [
                        {
                            "id": i,
                            "seek": 0,
                            "start": round(s, 3),
                            "end": round(e, 3),
                            "text": line,
                            "tokens": [],
                            "temperature": 0.0,
                            "avg_logprob": -0.1,
                            "compression_ratio": 1.0,
                            "no_speech_prob": 0.01,
                        }
                        for i, ((s, e), line) in enumerate(zip(segments, lines, strict=True))
                    ],
                    "usage": {"type": "duration", "seconds": max(1, round(duration))},
                }
            )
        return web.json_response(
            {
                "text": text,
                "usage": {"type": "duration", "seconds": max(1, round(duration))},
            }
        )
