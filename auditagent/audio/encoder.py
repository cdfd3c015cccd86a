"""Opus in Ogg with PyAV (which livekit-agents already depends on), into memory.

Runs only in the audio worker thread: encoding is CPU work the voice loop must never wait on.
The muxer writes whole pages (one per ``PAGE_DURATION_US``) to an in-memory sink; the pages are
handed out as they are written so nothing of the call waits in a file.
"""

from __future__ import annotations

import io
from typing import Any

import av
import numpy as np

from .ogg import OggPage, PageReader

__all__ = ["BIT_RATE", "OpusOggEncoder"]

BIT_RATE = 32_000
"""Both channels together: speech at 16 kbit/s a side is transparent for review and ~240 kB a
minute."""
PAGE_DURATION_US = 1_000_000
_SUPPORTED_RATES = (8000, 12000, 16000, 24000, 48000)


class _Sink(io.RawIOBase):
    """What the muxer writes, kept until the encoder takes it."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: Any) -> int:
        self.data += b
        return len(b)

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


def _codec_name() -> str:
    try:
        av.Codec("libopus", "w")
        return "libopus"
    except Exception:  # PyAV built without libopus: FFmpeg's own (experimental) encoder
        return "opus"


class OpusOggEncoder:
    """Stereo float32 blocks (2, n) at ``sample_rate`` in, Ogg pages out."""

    def __init__(self, *, sample_rate: int, bit_rate: int = BIT_RATE) -> None:
        if sample_rate not in _SUPPORTED_RATES:
            raise ValueError(f"Opus encodes {_SUPPORTED_RATES} Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self._sink = _Sink()
        self._reader = PageReader()
        self._container: Any = av.open(
            self._sink,
            mode="w",
            format="ogg",
            options={"page_duration": str(PAGE_DURATION_US)},
        )
        name = _codec_name()
        self._stream: Any = self._container.add_stream(name, rate=sample_rate, layout="stereo")
        self._stream.codec_context.bit_rate = bit_rate
        if name == "opus":
            self._stream.codec_context.options["strict"] = "experimental"
        self._pts = 0
        self._closed = False

    @property
    def pre_skip(self) -> int:
        """Samples (48 kHz) the decoder drops at the start, from the OpusHead page."""
        return self._reader.pre_skip

    def encode(self, block: np.ndarray) -> list[OggPage]:
        """Encode ``block`` (float32, shape (2, n)); returns the pages completed so far."""
        if self._closed:
            raise RuntimeError("the encoder is closed")
        if block.shape[1] == 0:
            return []
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(block, dtype=np.float32), format="fltp", layout="stereo"
        )
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        self._pts += block.shape[1]
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._reader.feed(self._sink.take())

    def close(self) -> list[OggPage]:
        """Drain the encoder and end the stream; the last pages, end-of-stream page included."""
        if self._closed:
            return []
        self._closed = True
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        pages = self._reader.feed(self._sink.take())
        if self._reader.pending:
            raise ValueError("the Ogg stream ended inside a page")
        return pages
