"""Sealed chunks: bound to session, index and placement; digests the chain can hold them to;
a recording read back whole or by byte range; tampering caught chunk by chunk."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
from livekit import rtc

from auditagent import records
from auditagent.audio.ogg import PlainChunk
from auditagent.audio.reading import ByteRange, RangeNotSatisfiable, parse_range
from auditagent.audio.sealing import SealedChunk, open_chunk, seal_chunk
from auditagent.audio.store import ChunkInfo
from auditagent.audio.verify import check_audio
from auditagent.audio.worker import AudioWorker, ChunkReady
from auditagent.errors import IntegrityError
from auditagent.integrity import crypto
from tests.audio.audio_support import decode, frames, rms, tone

SID = uuid.uuid4()
KEY = crypto.new_data_key()
T0 = datetime(2026, 11, 26, tzinfo=timezone.utc)


def _sealed(index: int, offset: int, data: bytes = b"OggS-pages") -> SealedChunk:
    return seal_chunk(
        crypto.Sealer(KEY),
        PlainChunk(index=index, offset=offset, duration=240_000, data=data),
        tenant="acme",
        session_id=SID,
        key_id="k1",
    )


def test_round_trip_and_spool_form() -> None:
    s = _sealed(0, 0)
    assert open_chunk(crypto.Sealer(KEY), s) == b"OggS-pages"
    assert SealedChunk.from_bytes(s.to_bytes()) == s
    assert b"OggS" not in s.to_bytes()


@pytest.mark.parametrize(
    "change",
    [
        {"index": 1},
        {"offset": 48_000},
        {"duration": 1},
        {"session_id": uuid.uuid4()},
        {"tenant": "other"},
        {"key_id": "k2"},
    ],
)
def test_a_chunk_moved_or_shifted_does_not_open(change: dict[str, object]) -> None:
    moved = dataclasses.replace(_sealed(0, 0), **change)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        open_chunk(crypto.Sealer(KEY), moved)


def test_malformed_spool_form_is_refused() -> None:
    data = _sealed(0, 0).to_bytes()
    for bad in (data[:-1], data + b"x", b"XXXX" + data[4:]):
        with pytest.raises(ValueError, match="malformed audio chunk"):
            SealedChunk.from_bytes(bad)


def _record(s: SealedChunk, *, final: bool = False) -> records.AudioChunk:
    return records.AudioChunk(
        at=T0,
        index=s.index,
        offset=s.offset,
        duration=s.duration,
        started_at=T0,
        size=s.size,
        sha256=s.digest.hex(),
        final=final,
    )


def _stored(chunks: list[SealedChunk]) -> list[tuple[ChunkInfo, bytes]]:
    return [(ChunkInfo(c.index, c.offset, c.duration, c.size), c.digest) for c in chunks]


def _three() -> tuple[list[SealedChunk], list[records.AudioChunk]]:
    chunks = [_sealed(i, i * 240_000, f"OggS-{i}".encode()) for i in range(3)]
    return chunks, [_record(c, final=c.index == 2) for c in chunks]


def test_intact_audio_checks() -> None:
    chunks, recs = _three()
    result = check_audio(recs, _stored(chunks))
    assert result.ok and result.chunks == 3 and result.complete and result.seconds == 15.0


def test_a_cut_chunk_fails() -> None:
    chunks, recs = _three()
    result = check_audio(recs, _stored([chunks[0], chunks[2]]))
    assert not result.ok and result.first_bad_index == 1 and "missing" in (result.reason or "")


def test_swapped_chunks_fail() -> None:
    chunks, recs = _three()
    a, b = chunks[0], chunks[1]
    swapped = [
        dataclasses.replace(b, index=0, offset=a.offset),
        dataclasses.replace(a, index=1, offset=b.offset),
        chunks[2],
    ]
    result = check_audio(recs, _stored(swapped))
    assert not result.ok and result.first_bad_index == 0


def test_an_edited_chunk_fails() -> None:
    chunks, recs = _three()
    edited = dataclasses.replace(
        chunks[1], ciphertext=bytes([chunks[1].ciphertext[0] ^ 1]) + chunks[1].ciphertext[1:]
    )
    result = check_audio(recs, _stored([chunks[0], edited, chunks[2]]))
    assert not result.ok and result.first_bad_index == 1 and "altered" in (result.reason or "")


def test_an_added_chunk_fails() -> None:
    chunks, recs = _three()
    extra = _sealed(3, 720_000)
    result = check_audio(recs, _stored([*chunks, extra]))
    assert not result.ok and result.first_bad_index == 3


def test_records_that_skip_a_chunk_fail() -> None:
    chunks, recs = _three()
    result = check_audio([recs[0], recs[2]], _stored(chunks))
    assert not result.ok and result.first_bad_index == 1


@pytest.mark.parametrize(
    ("header", "want"),
    [
        (None, None),
        ("bytes=0-", ByteRange(0, 99)),
        ("bytes=10-19", ByteRange(10, 19)),
        ("bytes=90-500", ByteRange(90, 99)),
        ("bytes=-10", ByteRange(90, 99)),
        ("bytes=0-0, 5-6", ByteRange(0, 0)),
        ("items=0-5", None),
    ],
)
def test_parse_range(header: str | None, want: ByteRange | None) -> None:
    assert parse_range(header, 100) == want


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-4", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


def _run_worker(
    *, pause: tuple[float, float] | None = None, late_at: float | None = None
) -> list[ChunkReady]:
    """Four seconds of call: the caller talks in the first two, the agent in the last two."""
    got: list[ChunkReady] = []
    done = threading.Event()
    w = AudioWorker(
        sealer=crypto.Sealer(KEY),
        tenant="acme",
        session_id=SID,
        key_id="k1",
        t0=100.0,
        on_chunk=got.append,
        on_failed=lambda _: None,
        chunk_seconds=1.0,
    )
    w.start()
    t = 100.0
    for f in frames(tone(2.0, rate=16_000), rate=16_000):
        w.put(("in", t, f))
        t += f.duration
    played = frames(tone(2.0, rate=24_000, freq=200), rate=24_000)
    w.put(("out", 102.0, 0.0, 2.0, played))
    if pause is not None:
        w.put(("pause", 100.0 + pause[0]))
        w.put(("resume", 100.0 + pause[1]))
    w.put(("flush", 103.0))
    if late_at is not None:  # half a second of the caller, arriving after its place was encoded
        t = late_at
        for f in frames(tone(0.5, rate=24_000), rate=24_000):
            w.put(("in", t, f))
            t += f.duration
        w.put(("end", 0))
    w.put(("close", 104.0))
    deadline = time.monotonic() + 10
    while not w.done.is_set():
        assert time.monotonic() < deadline, "audio worker did not finish"
        done.wait(0.01)
    assert not w.failed
    return got


def test_worker_records_both_channels_sealed_in_chunks() -> None:
    got = _run_worker()
    assert [c.record.index for c in got] == list(range(len(got)))
    assert got[-1].record.final and not any(c.record.final for c in got[:-1])
    recs = [c.record for c in got]
    assert check_audio(recs, _stored([c.sealed for c in got])).ok
    data = b"".join(open_chunk(crypto.Sealer(KEY), c.sealed) for c in got)
    pcm, rate = decode(data)
    assert pcm.shape[0] == 2
    assert abs(pcm.shape[1] / rate - 4.0) < 0.05
    assert rms(pcm[0, : int(1.9 * rate)]) > 0.1 and rms(pcm[0, int(2.1 * rate) :]) < 0.01
    assert rms(pcm[1, : int(1.9 * rate)]) < 0.01 and rms(pcm[1, int(2.1 * rate) :]) > 0.1
    assert recs[0].at == datetime.fromtimestamp(100.0, timezone.utc)
    assert all(r.late_samples == 0 for r in recs)


def test_audio_that_comes_after_its_place_was_encoded_is_counted_in_the_sealed_record() -> None:
    """Left out, never silently: the chunk records say how many samples came too late."""
    got = _run_worker(late_at=101.0)
    late = sum(c.record.late_samples for c in got)
    assert late == 24_000  # 0.5 s, counted at 48 kHz like the chunks' offsets
    assert check_audio([c.record for c in got], _stored([c.sealed for c in got])).ok


def test_worker_keeps_silence_of_the_same_length_while_paused() -> None:
    got = _run_worker(pause=(0.5, 2.5))
    data = b"".join(open_chunk(crypto.Sealer(KEY), c.sealed) for c in got)
    pcm, rate = decode(data)
    assert abs(pcm.shape[1] / rate - 4.0) < 0.05
    assert rms(pcm[:, int(0.6 * rate) : int(2.4 * rate)]) < 0.005
    assert rms(pcm[0, : int(0.4 * rate)]) > 0.1
    assert rms(pcm[1, int(2.6 * rate) :]) > 0.1


class _BrokenSealer(crypto.Sealer):
    def seal(
        self, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None
    ) -> tuple[bytes, bytes]:
        raise OSError("no entropy")


def test_a_failing_worker_says_so_and_stops_taking_audio() -> None:
    failed: list[str] = []
    w = AudioWorker(
        sealer=_BrokenSealer(KEY),
        tenant="acme",
        session_id=SID,
        key_id="k1",
        t0=0.0,
        on_chunk=lambda _: None,
        on_failed=failed.append,
        chunk_seconds=0.5,
    )
    w.start()
    for f in frames(tone(2.0, rate=24_000), rate=24_000):
        w.put(("in", 0.0, f))
    w.put(("flush", 2.0))
    assert w.done.wait(10)
    assert w.failed and failed == ["OSError"]


async def test_taps_never_raise_into_livekit() -> None:
    from livekit.agents.voice import io

    from auditagent.audio.tap import TapAudioInput

    class Mic(io.AudioInput):
        def __init__(self) -> None:
            super().__init__(label="mic")

        async def __anext__(self) -> rtc.AudioFrame:
            return frames(tone(0.02, rate=16_000), rate=16_000)[0]

    def broken(_: tuple[object, ...]) -> None:
        raise RuntimeError("queue gone")

    tap = TapAudioInput(Mic(), put=broken, active=lambda: True)
    frame = await tap.__anext__()
    assert frame.samples_per_channel == 320 and tap.failures == 1


def test_formats_byte_for_byte() -> None:
    """What docs/architecture.md states, so an independent verifier can rebuild both."""
    import hashlib
    import struct

    from auditagent.audio.sealing import chunk_aad, chunk_digest

    sid = uuid.UUID("00000000-0000-0000-0000-0000000000aa")

    def lp(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    def u64(n: int) -> bytes:
        return struct.pack(">IQ", 8, n)

    assert chunk_aad(
        tenant="acme", session_id=sid, key_id="k1", index=2, offset=480, duration=960
    ) == b"".join(
        (
            b"auditagent/audio/v1\0",
            lp(b"acme"),
            lp(sid.bytes),
            lp(b"k1"),
            u64(2),
            u64(480),
            u64(960),
        )
    )
    assert (
        chunk_digest(b"n" * 12, b"ct")
        == hashlib.sha256(b"auditagent/audio-chunk/v1\0" + lp(b"n" * 12) + lp(b"ct")).digest()
    )
