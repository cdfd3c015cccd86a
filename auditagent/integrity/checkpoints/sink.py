"""Where checkpoints are kept: outside the database, append-only."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from auditagent.integrity.checkpoints.note import NOTE_SUFFIX
from auditagent.settings import Settings

# --- sinks ------------------------------------------------------------------------------------


class CheckpointSink(Protocol):
    """Somewhere outside the database that keeps what is appended (a directory now; a WORM
    bucket or the customer's endpoint later). ``append`` must never overwrite."""

    def append(self, name: str, data: bytes) -> str:
        """Store ``data`` under the new ``name``; returns where it went."""
        ...

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Every stored (name, data), in name order."""
        ...


class DirectorySink(CheckpointSink):
    """One file per checkpoint in a directory; names sort by time."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def append(self, name: str, data: bytes) -> str:
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad checkpoint name {name!r}")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        return str(path)

    def items(self) -> Iterator[tuple[str, bytes]]:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                yield path.name, path.read_bytes()

    def get(self, name: str) -> bytes | None:
        """The data stored under ``name``, or None (one file open, no directory listing)."""
        if "/" in name or name.startswith("."):
            return None
        try:
            return (self.directory / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None


def default_sink(settings: Settings) -> DirectorySink:
    return DirectorySink(settings.resolved_checkpoint_dir)


def stamp(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


MAX_SESSION_NOTES = 64


def session_checkpoint_name(session_id: uuid.UUID, n: int = 0) -> str:
    """``session-<uuid>.ckpt``, then ``session-<uuid>.<n>.ckpt`` for later ones (a session
    that recorded more after a close): a reader finds a session's checkpoints by name,
    without listing the directory."""
    suffix = f".{n}" if n else ""
    return f"session-{session_id}{suffix}{NOTE_SUFFIX}"


def sink_get(sink: CheckpointSink, name: str) -> bytes | None:
    get = getattr(sink, "get", None)
    if get is not None:
        data: bytes | None = get(name)
        return data
    return dict(sink.items()).get(name)
