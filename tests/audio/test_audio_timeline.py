"""The two-channel timeline: audio where it happened, silence elsewhere and while paused."""

from __future__ import annotations

import numpy as np

from auditagent.audio.timeline import Timeline
from tests.audio.audio_support import frames, rms, tone

RATE = 24_000


def _feed(tl: Timeline, channel: int, t: float, pcm: np.ndarray, rate: int = RATE) -> float:
    for f in frames(pcm, rate=rate):
        tl.push(channel, t, f)
        t += f.duration
    return t


def test_channels_land_where_they_happened_with_silence_between() -> None:
    tl = Timeline(sample_rate=RATE, t0=1000.0)
    _feed(tl, 0, 1000.5, tone(1.0, rate=RATE))
    _feed(tl, 1, 1002.0, tone(0.5, rate=RATE, freq=200))
    tl.end_run(0)
    tl.end_run(1)
    block = tl.take(tl.sample_at(1003.0))
    assert block.shape == (2, 3 * RATE)
    sec = RATE
    assert rms(block[0, : sec // 2]) == 0.0  # before the caller spoke
    assert rms(block[0, sec // 2 + 100 : 3 * sec // 2 - 100]) > 0.1
    assert rms(block[0, 3 * sec // 2 + 10 :]) == 0.0
    assert rms(block[1, : 2 * sec]) == 0.0
    assert rms(block[1, 2 * sec + 100 : 5 * sec // 2 - 100]) > 0.1


def test_a_paused_span_is_silence_of_the_same_length() -> None:
    tl = Timeline(sample_rate=RATE, t0=0.0)
    _feed(tl, 0, 0.0, tone(3.0, rate=RATE))
    tl.pause(1.0)
    tl.resume(2.0)
    tl.end_run(0)
    block = tl.take(tl.sample_at(3.0))
    assert block.shape[1] == 3 * RATE
    assert rms(block[0, 100 : RATE - 100]) > 0.1
    assert not block[:, RATE : 2 * RATE].any()
    assert rms(block[0, 2 * RATE + 100 : 3 * RATE - 100]) > 0.1


def test_an_open_pause_silences_everything_after_it_across_takes() -> None:
    tl = Timeline(sample_rate=RATE, t0=0.0)
    tl.pause(0.5)
    _feed(tl, 0, 0.0, tone(2.0, rate=RATE))
    tl.end_run(0)
    first = tl.take(tl.sample_at(1.0))
    second = tl.take(tl.sample_at(2.0))
    assert rms(first[0, : RATE // 2 - 100]) > 0.1
    assert not first[:, RATE // 2 :].any() and not second.any()


def test_other_rates_and_stereo_are_resampled_to_mono() -> None:
    tl = Timeline(sample_rate=RATE, t0=0.0)
    mono16 = tone(1.0, rate=16_000)
    _feed(tl, 0, 0.0, mono16, rate=16_000)
    tl.end_run(0)
    block = tl.take(tl.sample_at(1.2))
    assert rms(block[0, 500 : RATE - 500]) > 0.1


def test_audio_behind_the_cursor_is_counted_not_placed() -> None:
    tl = Timeline(sample_rate=RATE, t0=0.0)
    tl.take(tl.sample_at(2.0))
    _feed(tl, 1, 0.5, tone(0.5, rate=RATE))
    tl.end_run(1)
    assert not tl.take(tl.sample_at(3.0)).any()
    assert tl.dropped > 0
