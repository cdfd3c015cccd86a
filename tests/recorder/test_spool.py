"""The spool on its own: frames on disk, torn tails, and which files a replay may take."""

from __future__ import annotations

import os
import stat
import zlib
from pathlib import Path

from auditagent.recorder.spool import (
    SUFFIX,
    TAG_ENVELOPE,
    TAG_SESSION,
    TAG_UPDATE,
    FrameReader,
    Spool,
    encode_frames,
)

FRAMES = [
    (TAG_SESSION, b'{"session":"kestrelmango"}'),
    (TAG_ENVELOPE, bytes(range(256)) * 3),
    (TAG_ENVELOPE, b""),  # an empty payload is still a frame (the tag is its body)
    (TAG_UPDATE, b'{"count":3}'),
]


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_frames_round_trip_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append(FRAMES[:2])
    spool.append_encoded(encode_frames(FRAMES[2:]))
    spool.seal_active()
    [(path, _fd)] = list(spool.claim())
    result = Spool.read(path)
    assert result.frames == FRAMES
    assert result.torn_bytes == 0
    assert path.name.endswith(SUFFIX)


def test_spool_is_private_to_its_owner(tmp_path: Path) -> None:
    d = tmp_path / "spool"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    spool = Spool(d)
    spool.append(FRAMES)
    assert _mode(d) == 0o700
    [f] = list(d.glob(f"*{SUFFIX}"))
    assert _mode(f) == 0o600
    spool.close()


def test_torn_tail_is_reported_not_parsed() -> None:
    whole = encode_frames(FRAMES)
    for cut in (1, 5, 9, 20):
        reader = FrameReader(whole[:-cut])
        assert list(reader) == FRAMES[:-1]
        last = len(encode_frames(FRAMES[-1:]))
        assert reader.torn_bytes == last - cut


def test_corrupt_frame_stops_the_read_there() -> None:
    """A CRC mismatch means the bytes after it cannot be trusted to be frames at all."""
    data = bytearray(encode_frames(FRAMES))
    second = len(encode_frames(FRAMES[:1]))
    data[second + 9 + 5] ^= 0xFF  # a byte inside the second frame's payload
    reader = FrameReader(bytes(data))
    assert list(reader) == FRAMES[:1]
    assert reader.torn_bytes == len(data) - second


def test_frame_header_is_length_crc_tag() -> None:
    [(tag, payload)] = FRAMES[-1:]
    raw = encode_frames([(tag, payload)])
    body = tag + payload
    assert raw[:4] == len(body).to_bytes(4, "big")
    assert raw[4:8] == zlib.crc32(body).to_bytes(4, "big")
    assert raw[8:] == body


def test_a_live_writers_file_is_never_claimed(tmp_path: Path) -> None:
    """Job processes share one directory: a file whose writer holds its lock is left alone,
    by another spool and by its own writer's replay, until it is sealed."""
    d = tmp_path / "spool"
    writer, other = Spool(d), Spool(d)
    writer.append(FRAMES)
    assert writer.has_active
    assert list(other.claim()) == []
    assert list(writer.claim()) == []
    writer.seal_active()
    claimed = [p for p, _ in other.claim()]
    assert len(claimed) == 1
    assert other.depth_files() == 1
    other.done(claimed[0])
    assert other.depth_files() == 0
    assert not claimed[0].exists()


def test_claim_goes_oldest_first_and_skips_files_removed_meanwhile(tmp_path: Path) -> None:
    d = tmp_path / "spool"
    spool = Spool(d)
    for i in range(3):
        spool.append([(TAG_UPDATE, f"file {i}".encode())])
        spool.seal_active()
    paths = sorted(d.glob(f"*{SUFFIX}"))
    paths[1].unlink()  # replayed by another process between listing and claiming
    got = [Spool.read(p).frames for p, _ in spool.claim()]
    assert got == [[(TAG_UPDATE, b"file 0")], [(TAG_UPDATE, b"file 2")]]


def test_appending_nothing_creates_no_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([])
    spool.append_encoded(b"")
    assert not spool.has_active
    assert spool.depth_files() == 0
