"""Two channels on one timeline: the caller (0) as the pipeline received it, the agent (1) as
it played out, each placed at the wall-clock time it happened.

Silence is whatever nothing was placed over: gaps in the input, the agent not speaking, audio
that never played because the user interrupted it. A paused span is cut out of both channels
and replaced by silence of the same length, so what follows stays where it happened and lines
up with the records. Used only by the audio worker thread.
"""

from __future__ import annotations

import math

import numpy as np
from livekit import rtc

__all__ = ["CHANNELS", "RESYNC_TOLERANCE", "Timeline"]

CHANNELS = 2
RESYNC_TOLERANCE = 0.1
"""A run of frames keeps its own clock while arrivals stay this close to it (seconds);
beyond, it is re-anchored so a drifting capture clock cannot slide the channel."""


class _Track:
    """One channel: runs of mono audio placed on the timeline (start sample, float32)."""

    def __init__(self, *, sample_rate: int, t0: float) -> None:
        self._rate = sample_rate
        self._t0 = t0
        self._placed: list[tuple[int, np.ndarray]] = []
        self._resampler: rtc.AudioResampler | None = None
        self._source_rate: int | None = None
        self._run_start: float | None = None
        self._run_samples = 0
        self.dropped = 0

    def push(self, started_at: float, frame: rtc.AudioFrame) -> None:
        expected = (
            None if self._run_start is None else self._run_start + self._run_samples / self._rate
        )
        if expected is None or abs(started_at - expected) > RESYNC_TOLERANCE:
            self.end_run()
            self._run_start, self._run_samples = started_at, 0
        self._place(self._resample(frame))

    def _resample(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        data = np.frombuffer(frame.data, dtype=np.int16)
        if frame.num_channels > 1:
            data = data.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
            frame = rtc.AudioFrame(
                data=data.tobytes(),
                sample_rate=frame.sample_rate,
                num_channels=1,
                samples_per_channel=len(data),
            )
        if frame.sample_rate == self._rate:
            return [frame]
        if self._resampler is None or self._source_rate != frame.sample_rate:
            self._flush_resampler()
            self._source_rate = frame.sample_rate
            self._resampler = rtc.AudioResampler(
                input_rate=frame.sample_rate, output_rate=self._rate, num_channels=1
            )
        return self._resampler.push(frame)

    def _flush_resampler(self) -> None:
        if self._resampler is not None:
            self._place(self._resampler.flush())
        self._resampler, self._source_rate = None, None

    def end_run(self) -> None:
        """Place what the resampler still holds while its run can be written."""
        if self._run_start is not None:
            self._flush_resampler()
        self._run_start, self._run_samples = None, 0

    @property
    def placed_through(self) -> int | None:
        """How far the open run reaches (samples), None when no run is open."""
        if self._run_start is None:
            return None
        return round((self._run_start - self._t0) * self._rate) + self._run_samples

    def _place(self, frames: list[rtc.AudioFrame]) -> None:
        if not frames or self._run_start is None:
            return
        joined = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])
        start = round((self._run_start - self._t0) * self._rate) + self._run_samples
        self._placed.append((start, joined.astype(np.float32) / 32768.0))
        self._run_samples += len(joined)

    def take(self, start: int, end: int) -> np.ndarray:
        """The channel over ``[start, end)``; audio placed before ``start`` is dropped."""
        block = np.zeros(max(0, end - start), dtype=np.float32)
        keep: list[tuple[int, np.ndarray]] = []
        for pos, samples in self._placed:
            stop = pos + len(samples)
            if stop <= start:
                self.dropped += len(samples)
                continue
            if pos >= end:
                keep.append((pos, samples))
                continue
            lo, hi = max(pos, start), min(stop, end)
            if pos < start:
                self.dropped += start - pos
            block[lo - start : hi - start] += samples[lo - pos : hi - pos]
            if stop > end:
                keep.append((end, samples[end - pos :]))
        self._placed = keep
        np.clip(block, -1.0, 1.0, out=block)
        return block


class Timeline:
    """Both channels from ``t0`` (wall clock, seconds) at ``sample_rate``."""

    def __init__(self, *, sample_rate: int, t0: float) -> None:
        self.sample_rate = sample_rate
        self.t0 = t0
        self._tracks = [_Track(sample_rate=sample_rate, t0=t0) for _ in range(CHANNELS)]
        self._cursor = 0
        self._pauses: list[list[float]] = []  # [start, end] in samples; end inf while open

    def sample_at(self, t: float) -> int:
        return round((t - self.t0) * self.sample_rate)

    @property
    def cursor(self) -> int:
        """Samples handed out so far (both channels)."""
        return self._cursor

    @property
    def dropped(self) -> int:
        """Samples that reached the timeline after their place had been handed out."""
        return sum(t.dropped for t in self._tracks)

    def push(self, channel: int, started_at: float, frame: rtc.AudioFrame) -> None:
        self._tracks[channel].push(started_at, frame)

    def end_run(self, channel: int) -> None:
        self._tracks[channel].end_run()

    def pause(self, at: float) -> None:
        if self._pauses and math.isinf(self._pauses[-1][1]):
            return
        self._pauses.append([float(self.sample_at(at)), math.inf])

    def resume(self, at: float) -> None:
        if self._pauses and math.isinf(self._pauses[-1][1]):
            self._pauses[-1][1] = float(max(self.sample_at(at), int(self._pauses[-1][0])))

    def settled_through(self, until: float, *, lag: float) -> int:
        """Where ``take`` may end for a flush ``until``: not past a run whose resampler may
        still hold its last ``lag`` seconds; a run that stalled longer is closed instead."""
        end = self.sample_at(until)
        held = end - round(lag * self.sample_rate)
        for track in self._tracks:
            through = track.placed_through
            if through is None:
                continue
            if through >= held:
                end = min(end, through)
            else:
                track.end_run()
        return end

    def take(self, end: int) -> np.ndarray:
        """Both channels from the cursor to ``end`` as float32 (2, n), silent where paused."""
        start = self._cursor
        if end <= start:
            return np.zeros((CHANNELS, 0), dtype=np.float32)
        block = np.stack([t.take(start, end) for t in self._tracks])
        for p0, p1 in self._pauses:
            lo, hi = max(start, int(p0)), min(end, p1)
            if hi > lo:
                block[:, lo - start : int(hi) - start] = 0.0
        # spans wholly behind the cursor can never matter again
        self._pauses = [p for p in self._pauses if p[1] > end]
        self._cursor = end
        return block
