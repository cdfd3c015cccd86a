"""Latency analytics (`/v1/analytics/latency`)."""

from __future__ import annotations

from pydantic import Field

from .base import ApiModel


class LatencyStat(ApiModel):
    count: int
    p50: float | None
    p95: float | None


class LatencyGroup(ApiModel):
    key: str | None
    sessions: int
    turns: int = Field(description="turn_timing records counted (each measurement once)")
    metrics: dict[str, LatencyStat] = Field(
        description="transcription_delay, end_of_utterance_delay, llm_ttft, tts_ttfb, "
        "realtime_ttft, e2e_latency; seconds. A measurement LiveKit reports twice (metrics "
        "event and the turn's chat message) is counted once, from the chat message."
    )


class LatencyReport(ApiModel):
    """Over the sessions in scope. Sessions that could not be read are left out of the figures
    and counted, never silently: `sessions_unreadable` (and the master keys this service's
    keyring lacks in `unreadable_master_keys`), `sessions_erased`."""

    group_by: str
    sessions_scanned: int = Field(description="Sessions whose timings are in the figures")
    sessions_unreadable: int = Field(
        default=0,
        description="Sessions left out: their data key does not unwrap with this keyring, or "
        "a sealed record failed its integrity check",
    )
    unreadable_master_keys: list[str] = Field(
        default_factory=list,
        description="Master key ids that wrapped data keys this keyring could not unwrap",
    )
    sessions_erased: int = Field(
        default=0, description="Sessions left out: erased (data key destroyed) meanwhile"
    )
    truncated: bool = Field(description="True when max_sessions cut the scan short")
    groups: list[LatencyGroup]
