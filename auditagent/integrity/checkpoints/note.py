"""Signed notes: the checkpoint format (C2SP tlog-checkpoint style), its signature and the
global manifest. See :mod:`auditagent.integrity.checkpoints` for the format."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from auditagent.errors import AuditagentError
from auditagent.integrity import crypto
from auditagent.integrity.encoding import MANIFEST_LABEL, parse_ts, ts
from auditagent.store import heads as head_store

KEY_NAME = "auditagent"
GLOBAL_ORIGIN = "auditagent/global"
CHANGES_ORIGIN = "auditagent/retention-changes"
SESSION_ORIGIN_PREFIX = "auditagent/session/"
_MANIFEST_LABEL = MANIFEST_LABEL
_SIG_PREFIX = "\u2014 "  # em dash and space, as in signed notes
NOTE_SUFFIX = ".ckpt"
MANIFEST_SUFFIX = ".manifest"


class CheckpointInvalid(AuditagentError):
    """A checkpoint did not parse or its signature does not verify."""


def key_id(public_key: bytes, name: str = KEY_NAME) -> bytes:
    return hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: datetime
    extensions: tuple[str, ...] = ()

    def body(self) -> bytes:
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode("ascii"),
            f"time {ts(self.time)}",
            *self.extensions,
        ]
        return ("\n".join(lines) + "\n").encode()

    def extension(self, name: str) -> list[str] | None:
        for line in self.extensions:
            parts = line.split(" ")
            if parts[0] == name:
                return parts[1:]
        return None

    @property
    def session_id(self) -> uuid.UUID | None:
        if self.origin.startswith(SESSION_ORIGIN_PREFIX):
            return uuid.UUID(self.origin[len(SESSION_ORIGIN_PREFIX) :])
        return None


def encode_note(cp: Checkpoint, signing_key: bytes) -> bytes:
    """The signed note: body, a blank line, one signature line."""
    body = cp.body()
    public = crypto.signing_public_key(signing_key)
    sig = crypto.sign(signing_key, body)
    line = f"{_SIG_PREFIX}{KEY_NAME} {base64.b64encode(key_id(public) + sig).decode('ascii')}\n"
    return body + b"\n" + line.encode()


def parse_note(data: bytes, public_key: bytes) -> Checkpoint:
    """Parse and authenticate a note; ``CheckpointInvalid`` unless a signature line by
    ``KEY_NAME`` with this key's id verifies over the exact body bytes."""
    try:
        text_ = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointInvalid("checkpoint is not UTF-8") from None
    body, sep, sigs = text_.partition("\n\n")
    if not sep or not body:
        raise CheckpointInvalid("checkpoint has no signature block")
    body_bytes = (body + "\n").encode()
    want = key_id(public_key)
    verified = False
    for line in sigs.splitlines():
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointInvalid("malformed signature line")
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointInvalid("signature is not base64") from None
        if name != KEY_NAME or len(raw) != 68 or raw[:4] != want:
            continue
        if crypto.verify_signature(public_key, body_bytes, raw[4:]):
            verified = True
    if not verified:
        raise CheckpointInvalid("no valid signature by the checkpoint key")
    lines = body.split("\n")
    if len(lines) < 4:
        raise CheckpointInvalid("checkpoint body is too short")
    try:
        size = int(lines[1])
        if size < 0 or str(size) != lines[1]:
            raise ValueError
        root = base64.b64decode(lines[2], validate=True)
        if not lines[3].startswith("time "):
            raise ValueError
        when = parse_ts(lines[3][5:])
    except (ValueError, binascii.Error):
        raise CheckpointInvalid("checkpoint body is malformed") from None
    return Checkpoint(origin=lines[0], size=size, root=root, time=when, extensions=tuple(lines[4:]))


def manifest_lines(heads: Iterable[head_store.SessionHead]) -> bytes:
    out = []
    for h in sorted(heads, key=lambda h: str(h.session_id)):
        head = base64.b64encode(h.head_hash).decode("ascii") if h.head_hash else "-"
        out.append(f"{h.session_id} {h.event_count} {head}\n")
    return "".join(out).encode()


def manifest_root(manifest: bytes) -> bytes:
    return hashlib.sha256(_MANIFEST_LABEL + manifest).digest()


def parse_manifest(manifest: bytes) -> list[tuple[uuid.UUID, int, bytes | None]]:
    out = []
    for line in manifest.decode("ascii").splitlines():
        sid, count, head = line.split(" ")
        out.append((uuid.UUID(sid), int(count), None if head == "-" else base64.b64decode(head)))
    return out
