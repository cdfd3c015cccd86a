"""Durable local spool: sealed frames on disk while the database is slow, down or gone.

A spool file holds only what would go to the database anyway: sealed envelopes, wrapped data
keys, blind indexes and metadata — never plaintext. Each writer appends to a file of its own and
holds an exclusive ``flock`` on it, so several job processes can share one data directory:
a file whose lock can be taken belongs to nobody (closed, or left by a crashed process) and may
be replayed. Replays are idempotent on (session_id, seq), so a crash between commit and unlink
only costs a duplicate insert that the database ignores.

Frame: ``u32 length | u32 crc32 | u8 tag | payload``. A torn tail (crash mid-write, before the
fsync that would have acknowledged it) is detected by length/CRC and reported, never parsed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..store.db import ensure_private_dir

log = logging.getLogger("auditagent.spool")

_FRAME = struct.Struct(">II")
SUFFIX = ".spool"

TAG_ENVELOPE = b"E"
TAG_SESSION = b"S"
TAG_UPDATE = b"U"
TAG_INDEX = b"I"
"""Search index rows (beacons and role codes only): auditagent.store.search_index.IndexRows."""
TAG_AUDIO = b"A"
"""A sealed audio chunk (auditagent.audio.sealing.SealedChunk): ciphertext only."""


@dataclass(frozen=True)
class ReadResult:
    frames: list[tuple[bytes, bytes]]
    torn_bytes: int


class Spool:
    """One process's spool directory handle."""

    def __init__(self, directory: Path) -> None:
        self.directory = ensure_private_dir(directory)
        self._active: BinaryIO | None = None
        self._active_path: Path | None = None

    # -- writing -------------------------------------------------------------------------
    def append(self, frames: list[tuple[bytes, bytes]]) -> None:
        """Append ``(tag, payload)`` frames and fsync: on return they survive a crash."""
        if frames:
            self.append_encoded(encode_frames(frames))

    def append_encoded(self, data: bytes) -> None:
        """Append frames already encoded with :func:`encode_frames` and fsync.

        The recorder encodes on its event loop in short slices and calls this in a worker
        thread, which then only does I/O (and releases the GIL while it does)."""
        if not data:
            return
        f = self._ensure_active()
        f.write(data)
        f.flush()
        os.fsync(f.fileno())

    def _ensure_active(self) -> BinaryIO:
        if self._active is None:
            # Names sort by creation time, so a replay keeps the order records were spooled in.
            name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
            path = self.directory / name
            # Locked under a name no replayer looks at, then renamed: a file that can be
            # claimed is never one whose writer has not taken its lock yet.
            creating = path.with_name(name + ".new")
            fd = os.open(creating, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            f = os.fdopen(fd, "ab")
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(creating, path)
            self._active, self._active_path = f, path
            _fsync_dir(self.directory)
        return self._active

    def seal_active(self) -> None:
        """Close the active file so it can be replayed; the next append starts a new one."""
        if self._active is not None:
            f, self._active, self._active_path = self._active, None, None
            f.close()  # closing releases the flock

    @property
    def has_active(self) -> bool:
        return self._active is not None

    # -- replaying -----------------------------------------------------------------------
    def claim(self) -> Iterator[tuple[Path, int]]:
        """Yield spool files nobody holds, oldest first, each locked while the caller replays it.

        The caller calls :meth:`done` after committing a file's frames.
        """
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path == self._active_path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # another process replayed and removed it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live writer owns it
            if not path.exists():
                os.close(fd)
                continue
            try:
                yield path, fd
            finally:
                os.close(fd)

    @staticmethod
    def read(path: Path) -> ReadResult:
        reader = FrameReader(path.read_bytes())
        frames = list(reader)
        return ReadResult(frames=frames, torn_bytes=reader.torn_bytes)

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def depth_files(self) -> int:
        return sum(1 for _ in self.directory.glob(f"*{SUFFIX}"))

    def close(self) -> None:
        self.seal_active()


def encode_frames(frames: Iterable[tuple[bytes, bytes]]) -> bytes:
    """``(tag, payload)`` frames in the on-disk format: ``u32 len | u32 crc32 | tag | payload``."""
    buf = bytearray()
    pack = _FRAME.pack
    for tag, payload in frames:
        body = tag + payload
        buf += pack(len(body), zlib.crc32(body))
        buf += body
    return bytes(buf)


class FrameReader:
    """Iterate the frames of a spool file's bytes, one at a time, so a caller on an event loop
    can stop between frames; ``torn_bytes`` is set once the iteration is over."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.torn_bytes = 0

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        data = self._data
        pos = 0
        while pos + _FRAME.size <= len(data):
            length, crc = _FRAME.unpack_from(data, pos)
            start = pos + _FRAME.size
            body = data[start : start + length]
            if length < 1 or len(body) != length or zlib.crc32(body) != crc:
                break
            yield body[:1], body[1:]
            pos = start + length
        self.torn_bytes = len(data) - pos


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
