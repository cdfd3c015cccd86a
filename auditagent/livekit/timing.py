"""Per-turn timings: from a ChatMessage's metrics report, and from LiveKit's metrics events.

Stateless: each function turns one LiveKit object into at most one ``turn_timing`` record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..records import ModelInfo, Provenance, Record, TokenCounts, TurnTiming
from .fields import safe_str, utc

_MESSAGE_KEYS = (
    "transcription_delay",
    "end_of_turn_delay",
    "on_user_turn_completed_delay",
    "llm_node_ttft",
    "tts_node_ttfb",
    "e2e_latency",
    "playback_latency",
)


def message_timing(
    msg: Any, m: dict[str, Any], at: datetime, provenance: Provenance
) -> TurnTiming | None:
    """The timings LiveKit keeps on a ChatMessage (``msg.metrics``), if it kept any."""
    if not any(k in m for k in _MESSAGE_KEYS):
        return None

    def f(k: str) -> float | None:
        v = m.get(k)
        return float(v) if isinstance(v, (int, float)) else None

    ids = m.get("provider_request_ids")
    request_id = ids[0] if isinstance(ids, list) and ids and isinstance(ids[0], str) else None
    return TurnTiming(
        at=at,
        item_id=msg.id,
        role=msg.role if msg.role in ("user", "assistant") else None,
        transcription_delay=f("transcription_delay"),
        end_of_utterance_delay=f("end_of_turn_delay"),
        on_user_turn_completed_delay=f("on_user_turn_completed_delay"),
        llm_ttft=f("llm_node_ttft"),
        tts_ttfb=f("tts_node_ttfb"),
        e2e_latency=f("e2e_latency"),
        playback_latency=f("playback_latency"),
        source="chat_message",
        request_id=request_id,
        provenance=provenance,
    )


def metrics_records(ev: Any, t: float) -> list[Record]:
    """A ``metrics_collected`` event: STT/LLM/TTS/EOU/realtime figures ChatMessage lacks."""
    m = ev.metrics
    kind = getattr(m, "type", "")
    meta = getattr(m, "metadata", None)
    model = ModelInfo(model=meta.model_name, provider=meta.model_provider) if meta else None
    common: dict[str, Any] = {
        "at": utc(t),
        "model": model,
        "speech_id": getattr(m, "speech_id", None),
    }
    if kind == "llm_metrics":
        return [
            TurnTiming(
                **common,
                source="llm_metrics",
                request_id=safe_str(getattr(m, "request_id", None)) or None,
                llm_ttft=m.ttft,
                llm_duration=m.duration,
                tokens=TokenCounts(
                    prompt=m.prompt_tokens, completion=m.completion_tokens, total=m.total_tokens
                ),
            )
        ]
    if kind == "tts_metrics":
        return [
            TurnTiming(
                **common, source="tts_metrics", tts_ttfb=m.ttfb, audio_out_s=m.audio_duration
            )
        ]
    if kind == "stt_metrics":
        return [TurnTiming(**common, source="stt_metrics", audio_in_s=m.audio_duration)]
    if kind == "eou_metrics":
        return [
            TurnTiming(
                **common,
                source="eou_metrics",
                end_of_utterance_delay=m.end_of_utterance_delay,
                transcription_delay=m.transcription_delay,
                on_user_turn_completed_delay=m.on_user_turn_completed_delay,
            )
        ]
    if kind == "realtime_model_metrics":
        reported = isinstance(m.ttft, (int, float)) and m.ttft >= 0
        return [
            TurnTiming(
                **common,
                source="realtime_metrics",
                request_id=safe_str(getattr(m, "request_id", None)) or None,
                realtime_ttft=m.ttft if reported else None,
                # LiveKit's RealtimeModelMetrics uses -1 for "no first-audio time"
                not_reported=(
                    {}
                    if reported
                    else {"realtime_ttft": "the provider reports no first-audio time"}
                ),
                llm_duration=m.duration,
                tokens=TokenCounts(
                    prompt=m.input_tokens, completion=m.output_tokens, total=m.total_tokens
                ),
            )
        ]
    # VAD / interruption / avatar metrics are operational, not part of the audit trail
    return []
