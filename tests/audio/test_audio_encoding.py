"""Opus in Ogg: pages read from the muxer's writes, chunks of whole pages, one playable stream."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from auditagent.audio.encoder import OpusOggEncoder
from auditagent.audio.ogg import GRANULE_RATE, Chunker, PageReader
from tests.audio.audio_support import decode, rms


def _encode(seconds: int, *, rate: int = 24_000, chunk_s: float = 2.0) -> list:  # type: ignore[type-arg]
    enc = OpusOggEncoder(sample_rate=rate)
    chunker = Chunker(target=round(chunk_s * GRANULE_RATE))
    chunks = []
    t = np.arange(rate) / rate
    for s in range(seconds):
        left = np.sin(2 * np.pi * 300 * (t + s)) * 0.3
        block = np.stack([left, np.zeros_like(left)]).astype(np.float32)
        chunker.pre_skip = enc.pre_skip
        chunks += chunker.add(enc.encode(block))
    chunker.pre_skip = enc.pre_skip
    chunks += chunker.finish(enc.close())
    return chunks


def test_chunks_concatenate_to_one_stream_of_the_right_length() -> None:
    chunks = _encode(9)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert len(chunks) >= 4
    assert chunks[0].data.startswith(b"OggS") and b"OpusHead" in chunks[0].data[:200]
    # placement is contiguous and adds up to the audio fed in
    for a, b in itertools.pairwise(chunks):
        assert b.offset == a.offset + a.duration
    assert sum(c.duration for c in chunks) == 9 * GRANULE_RATE
    pcm, rate = decode(b"".join(c.data for c in chunks))
    assert rate == GRANULE_RATE and pcm.shape == (2, 9 * GRANULE_RATE)
    # left carries the tone, right is silent
    assert rms(pcm[0]) > 0.1 and rms(pcm[1]) < 0.01


def test_every_chunk_but_the_first_starts_on_a_page() -> None:
    for c in _encode(6)[1:]:
        assert c.data.startswith(b"OggS")


def test_page_reader_accepts_writes_split_anywhere() -> None:
    data = b"".join(c.data for c in _encode(3))
    whole = PageReader().feed(data)
    reader = PageReader()
    split = []
    for i in range(0, len(data), 37):
        split += reader.feed(data[i : i + 37])
    assert [p.data for p in split] == [p.data for p in whole]
    assert reader.pending == 0 and reader.pre_skip > 0


def test_page_reader_refuses_what_is_not_ogg() -> None:
    with pytest.raises(ValueError, match="not an Ogg stream"):
        PageReader().feed(b"RIFF" + bytes(60))


def test_encoder_refuses_rates_opus_does_not_take() -> None:
    with pytest.raises(ValueError, match="Opus encodes"):
        OpusOggEncoder(sample_rate=44_100)
