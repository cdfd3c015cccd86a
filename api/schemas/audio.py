"""Call audio in API answers (issue 15): its integrity in `/verify`, its part of a bundle."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from .base import ApiModel


class AudioIntegrity(ApiModel):
    """The stored audio chunks held to the `audio_chunk` records in the chain."""

    ok: bool
    chunks: int = Field(description="Chunks that matched their record before the first failure")
    seconds: float = Field(description="Audio those chunks carry")
    complete: bool = Field(description="The last chunk ends the stream (recording closed)")
    first_bad_chunk: int | None = None
    reason: str | None = None


class BundleAudioChunk(ApiModel):
    index: int
    offset: int = Field(description="48 kHz samples from the recording's start")
    duration: int = Field(description="48 kHz samples")
    size: int = Field(description="Bytes of the Ogg stream this chunk carries")
    sha256: str = Field(description="Digest of the sealed chunk, as its audio record states")


class BundleAudio(ApiModel):
    media_type: Literal["audio/ogg"]
    data_base64: str = Field(description="The decrypted recording (two channels, Opus in Ogg)")
    chunks: list[BundleAudioChunk]
    ok: bool = Field(description="The stored chunks matched their audio records at export")
    reason: str | None = None


class TranscriptAudio(ApiModel):
    """Where the call's recording is and how it lines up with the transcript: an entry at
    `at` (or `started_at`) plays at `at - started_at` seconds into the recording."""

    url: str = Field(description="The recording (`audio/ogg`, byte ranges)")
    started_at: datetime = Field(description="Wall-clock time of the recording's first sample")
    seconds: float = Field(description="Length of the recording, per its audio records")
    complete: bool = Field(description="The recording's last chunk is in (the session closed)")
    late_seconds: float = Field(
        0.0, description="Captured audio that reached the recorder too late to be placed: left out"
    )
