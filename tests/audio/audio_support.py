"""Synthetic audio for the audio tests: tones in, decoded channels out."""

from __future__ import annotations

import io

import av
import numpy as np
from livekit import rtc


def tone(seconds: float, *, rate: int, freq: float = 440.0, amp: int = 8000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amp).astype(np.int16)


def frames(pcm: np.ndarray, *, rate: int, frame_ms: int = 20) -> list[rtc.AudioFrame]:
    spf = rate * frame_ms // 1000
    return [
        rtc.AudioFrame(
            data=pcm[i : i + spf].tobytes(),
            sample_rate=rate,
            num_channels=1,
            samples_per_channel=len(pcm[i : i + spf]),
        )
        for i in range(0, len(pcm), spf)
    ]


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """The stream's samples as float32 (channels, n) and its rate."""
    container = av.open(io.BytesIO(data))
    parts = []
    rate = 48_000
    for f in container.decode(audio=0):
        rate = f.sample_rate
        parts.append(f.to_ndarray().reshape(f.layout.nb_channels, -1))
    container.close()
    return np.concatenate(parts, axis=1), rate


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if x.size else 0.0
