"""Deepgram speech-to-text simulator: streaming `/v1/listen` websocket and batch POST.

Protocol as the livekit deepgram plugin (1.8.9) speaks it: query parameters carry the
options (`sample_rate`, `channels`, `interim_results`, `vad_events`, `endpointing`,
`utterance_end_ms`, `language`, `punctuate`, `smart_format`, `diarize`, ...), binary
frames carry linear16 audio, text frames carry `KeepAlive`, `Finalize` and `CloseStream`.
Replies are `SpeechStarted`, `Results` (interim and final), `UtteranceEnd` and, on close,
`Metadata`.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import wave
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .script import (
    USER_SECONDS_PER_CHAR,
    Scenario,
    SpeechSegmenter,
    closest_user_line,
    find_segments,
    word_timings,
)

MODEL_INFO = {"name": "nova-3-general", "version": "2025-01-01.0", "arch": "nova-3"}
CONFIDENCE = 0.98
# Audio time between two interim results while a segment is open.
INTERIM_EVERY_S = 0.25


def _flag(query: Any, name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    return str(raw).lower() == "true"


def _words(text: str, start: float, *, diarize: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for punctuated, w_start, w_end in word_timings(
        text, start=start, per_char=USER_SECONDS_PER_CHAR
    ):
        word: dict[str, Any] = {
            "word": "".join(c for c in punctuated.lower() if c.isalnum() or c == "'"),
            "start": w_start,
            "end": w_end,
            "confidence": CONFIDENCE,
            "punctuated_word": punctuated,
        }
        if diarize:
            word["speaker"] = 0
            word["speaker_confidence"] = 0.9
        out.append(word)
    return out


@dataclass
class _Segment:
    line: int
    text: str
    start: float
    next_interim: float
    finalized: bool = False


@dataclass
class _Stream:
    scenario: Scenario
    sample_rate: int
    channels: int
    interim_results: bool
    vad_events: bool
    endpointing: bool
    utterance_end: bool
    language: str
    diarize: bool
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    segments_seen: int = 0
    segment: _Segment | None = None
    segmenter: SpeechSegmenter = field(init=False)

    def __post_init__(self) -> None:
        self.segmenter = SpeechSegmenter(self.sample_rate)

    def _results(
        self,
        seg: _Segment,
        *,
        upto: float | None,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool = False,
        empty: bool = False,
    ) -> dict[str, Any]:
        words = [] if empty else _words(seg.text, seg.start, diarize=self.diarize)
        if upto is not None:
            # an interim result holds the words already "heard", at least the first
            words = [w for i, w in enumerate(words) if i == 0 or w["end"] <= upto]
        transcript = " ".join(w["punctuated_word"] for w in words)
        end = words[-1]["end"] if words else self.segmenter.position
        return {
            "type": "Results",
            "channel_index": [0, self.channels],
            "duration": round(max(0.0, end - seg.start), 3),
            "start": round(seg.start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {
                        "transcript": transcript,
                        "confidence": CONFIDENCE if words else 0.0,
                        "words": words,
                        "languages": [self.language],
                    }
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": MODEL_INFO,
                "model_uuid": "00000000-0000-4000-8000-000000000000",
            },
        }

    def on_audio(self, pcm: bytes) -> list[dict[str, Any]]:
        if self.channels > 1:
            # keep the first channel: the scenario is one speaker
            import numpy as np

            arr = np.frombuffer(pcm[: len(pcm) - len(pcm) % (2 * self.channels)], dtype="<i2")
            pcm = arr[:: self.channels].tobytes()
        out: list[dict[str, Any]] = []
        for kind, t in self.segmenter.feed(pcm):
            out.extend(self._on_event(kind, t))
        seg = self.segment
        if (
            seg is not None
            and not seg.finalized
            and self.interim_results
            and self.segmenter.position >= seg.next_interim
        ):
            seg.next_interim = self.segmenter.position + INTERIM_EVERY_S
            out.append(
                self._results(seg, upto=self.segmenter.position, is_final=False, speech_final=False)
            )
        return out

    def _on_event(self, kind: str, t: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if kind == "start":
            line = self.segments_seen
            self.segments_seen += 1
            self.segment = _Segment(
                line=line,
                text=self.scenario.user_line(line),
                start=t,
                next_interim=t + INTERIM_EVERY_S,
            )
            if self.vad_events:
                out.append({"type": "SpeechStarted", "channel": [0], "timestamp": round(t, 3)})
        elif kind == "end" and self.segment is not None:
            seg, self.segment = self.segment, None
            if seg.finalized:
                # the words went out on Finalize; only the endpoint is left to report
                if self.endpointing:
                    out.append(
                        self._results(seg, upto=None, is_final=True, speech_final=True, empty=True)
                    )
            else:
                out.append(
                    self._results(seg, upto=None, is_final=True, speech_final=self.endpointing)
                )
            if self.utterance_end:
                out.append(
                    {"type": "UtteranceEnd", "channel": [0, self.channels], "last_word_end": t}
                )
        return out

    def finalize(self) -> list[dict[str, Any]]:
        seg = self.segment
        if seg is None or seg.finalized:
            return []
        seg.finalized = True
        return [
            self._results(seg, upto=None, is_final=True, speech_final=False, from_finalize=True)
        ]

    def close(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for kind, t in self.segmenter.flush():
            out.extend(self._on_event(kind, t))
        out.append(
            {
                "type": "Metadata",
                "transaction_key": "deprecated",
                "request_id": self.request_id,
                "sha256": "",
                "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "duration": round(self.segmenter.position, 3),
                "channels": self.channels,
                "models": [MODEL_INFO["name"]],
                "model_info": {MODEL_INFO["name"]: MODEL_INFO},
            }
        )
        return out


class DeepgramSimulator:
    """Serves `/v1/listen` (websocket upgrade or batch POST) for one scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.connections = 0
        # query parameters of every websocket connection, for tests asserting options
        self.requests: list[dict[str, str]] = []

    def register(self, app: web.Application, prefix: str = "/v1") -> None:
        app.router.add_route("GET", f"{prefix}/listen", self.handle_ws)
        app.router.add_route("POST", f"{prefix}/listen", self.handle_batch)

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if not request.headers.get("Authorization", "").startswith("Token "):
            raise web.HTTPUnauthorized(text="missing Token authorization")
        if q.get("encoding", "linear16") != "linear16":
            raise web.HTTPBadRequest(text="only linear16 is simulated")
        self.requests.append(dict(q))
        self.connections += 1
        endpointing = q.get("endpointing", "10")
        stream = _Stream(
            scenario=self.scenario,
            sample_rate=int(q.get("sample_rate", "16000")),
            channels=int(q.get("channels", "1")),
            interim_results=_flag(q, "interim_results", False),
            vad_events=_flag(q, "vad_events", False),
            endpointing=endpointing.lower() != "false",
            utterance_end="utterance_end_ms" in q,
            language=q.get("language", self.scenario.language),
            diarize=_flag(q, "diarize", False),
        )
        ws = web.WebSocketResponse(autoping=True)
        ws.headers["dg-request-id"] = stream.request_id
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                for ev in stream.on_audio(msg.data):
                    await ws.send_str(json.dumps(ev))
            elif msg.type == WSMsgType.TEXT:
                try:
                    kind = json.loads(msg.data).get("type")
                except (ValueError, AttributeError):
                    kind = None
                if kind == "KeepAlive":
                    continue
                if kind == "Finalize":
                    for ev in stream.finalize():
                        await ws.send_str(json.dumps(ev))
                elif kind == "CloseStream":
                    for ev in stream.close():
                        await ws.send_str(json.dumps(ev))
                    await ws.close()
                    break
                else:
                    await ws.send_str(
                        json.dumps({"type": "Error", "description": f"unknown message {kind!r}"})
                    )
            elif msg.type == WSMsgType.ERROR:
                break
        return ws

    async def handle_batch(self, request: web.Request) -> web.Response:
        body = await request.read()
        q = request.query
        try:
            with wave.open(io.BytesIO(body), "rb") as wav:
                rate = wav.getframerate()
                pcm = wav.readframes(wav.getnframes())
        except (wave.Error, EOFError):
            rate = int(q.get("sample_rate", "16000"))
            pcm = body
        words: list[dict[str, Any]] = []
        for start, end in find_segments(pcm, rate):
            line = self.scenario.user_line(closest_user_line(self.scenario, end - start))
            words.extend(_words(line, start, diarize=_flag(q, "diarize", False)))
        transcript = " ".join(w["punctuated_word"] for w in words)
        request_id = str(uuid.uuid4())
        return web.json_response(
            {
                "metadata": {
                    "request_id": request_id,
                    "duration": len(pcm) / 2 / rate,
                    "channels": 1,
                    "models": [MODEL_INFO["name"]],
                    "model_info": {MODEL_INFO["name"]: MODEL_INFO},
                },
                "results": {
                    "channels": [
                        {
                            "alternatives": [
                                {
                                    "transcript": transcript,
                                    "confidence": CONFIDENCE if words else 0.0,
                                    "words": words,
                                }
                            ],
                            "detected_language": q.get("language", self.scenario.language),
                        }
                    ]
                },
            },
            headers={"dg-request-id": request_id},
        )
